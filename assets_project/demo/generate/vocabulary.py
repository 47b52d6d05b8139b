"""Vocabularies and rates of the demo data: time span, sources, defect kinds and rates, enums,
name parts, and how many records of each kind go with a size."""

from __future__ import annotations

from dataclasses import dataclass

from assets_project.lib.contracts import load_contract

GENERATOR_VERSION = 1
BASE_DATE = "2026-01-01"
BASE_S = 1_767_225_600  # 2026-01-01T00:00:00Z
DAYS = 31
END_S = BASE_S + DAYS * 86_400  # 2026-02-01T00:00:00Z, exclusive
SPAN_S = END_S - BASE_S
CHUNK_ROWS = 200_000
MAX_FILES = 100
MANIFEST_NAME = "_manifest.json"

CSV_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
EVENT_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_FORMAT = "%Y-%m-%d"

USERS, PRODUCTS, ORDERS, USER_EVENTS = "users", "products", "orders", "user_events"
SOURCES = (USERS, PRODUCTS, ORDERS, USER_EVENTS)
_EXTENSION = {USERS: "csv", PRODUCTS: "csv", ORDERS: "csv", USER_EVENTS: "jsonl"}
_STREAM = {"world": 0, USERS: 1, PRODUCTS: 2, ORDERS: 3, USER_EVENTS: 4}
_HEADER = {
    USERS: "user_id,email,signup_date,user_tier,geographic_region,updated_at",
    PRODUCTS: "product_id,name,category,unit_price,updated_at",
    ORDERS: "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at",
}

DUPLICATE_IN_FILE = "duplicate_in_file"
DUPLICATE_ACROSS_FILES = "duplicate_across_files"
NULL_REQUIRED = "null_required"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
BAD_PATTERN = "bad_pattern"
UNKNOWN_ENUM = "unknown_enum"
LATE_EVENT = "late_event"
MALFORMED_JSON = "malformed_json"
NON_OBJECT_JSON = "non_object_json"

#: Defect kinds whose rows break the contract (the rest are valid records).
INVALID_KINDS = frozenset(
    {NULL_REQUIRED, WRONG_TYPE, OUT_OF_RANGE, BAD_PATTERN, UNKNOWN_ENUM, MALFORMED_JSON}
    | {NON_OBJECT_JSON}
)
_CSV_INVALID = (NULL_REQUIRED, WRONG_TYPE, OUT_OF_RANGE, UNKNOWN_ENUM)
#: The defect kinds injected into each source.
SOURCE_DEFECTS: dict[str, tuple[str, ...]] = {
    USERS: (DUPLICATE_IN_FILE, DUPLICATE_ACROSS_FILES, *_CSV_INVALID, BAD_PATTERN),
    PRODUCTS: (DUPLICATE_IN_FILE, DUPLICATE_ACROSS_FILES, *_CSV_INVALID),
    ORDERS: (DUPLICATE_IN_FILE, DUPLICATE_ACROSS_FILES, *_CSV_INVALID),
    USER_EVENTS: (
        DUPLICATE_IN_FILE,
        DUPLICATE_ACROSS_FILES,
        *_CSV_INVALID,
        BAD_PATTERN,
        MALFORMED_JSON,
        NON_OBJECT_JSON,
        LATE_EVENT,
    ),
}
#: Share of the valid rows of a source (late events: of its last file) per defect kind.
DEFECT_RATES: dict[str, float] = {
    DUPLICATE_IN_FILE: 0.005,
    DUPLICATE_ACROSS_FILES: 0.003,
    NULL_REQUIRED: 0.003,
    WRONG_TYPE: 0.003,
    OUT_OF_RANGE: 0.002,
    BAD_PATTERN: 0.002,
    UNKNOWN_ENUM: 0.002,
    MALFORMED_JSON: 0.001,
    NON_OBJECT_JSON: 0.001,
    LATE_EVENT: 0.005,
}

# Contract enums, read from the contracts (never written here): records hold their members by
# code, the position in the contract's list.
TIERS = load_contract(USERS).enum("user_tier")
REGIONS = load_contract(USERS).enum("geographic_region")
CATEGORIES = load_contract(PRODUCTS).enum("category")
STATUSES = load_contract(ORDERS).enum("status")
EVENT_TYPES = load_contract(USER_EVENTS).enum("event_type")
# Codes of the members the order life cycle and the event payloads name.
_PENDING = STATUSES.index("pending")
_PAID = STATUSES.index("paid")
_SHIPPED = STATUSES.index("shipped")
_DELIVERED = STATUSES.index("delivered")
_CANCELLED = STATUSES.index("cancelled")
_RETURNED = STATUSES.index("returned")
_PAGE_VIEW = EVENT_TYPES.index("page_view")
_CLICK = EVENT_TYPES.index("click")
_PURCHASE = EVENT_TYPES.index("purchase")
_SIGNUP = EVENT_TYPES.index("signup")
_LOGOUT = EVENT_TYPES.index("logout")

# Probability of each member, in the contract's order (a changed enum must change these too).
_TIER_P = (0.55, 0.25, 0.15, 0.05)
_REGION_P = (0.30, 0.32, 0.22, 0.10, 0.06)
_EVENT_P = (0.60, 0.25, 0.05, 0.02, 0.08)
if (len(_TIER_P), len(_REGION_P), len(_EVENT_P)) != (len(TIERS), len(REGIONS), len(EVENT_TYPES)):
    raise ValueError("demo generator: a contract enum changed; update the member probabilities")

_FIRST = (
    "anna", "ben", "carla", "david", "elif", "felix", "grace", "hugo", "ines", "jonas",
    "kira", "liam", "maria", "noah", "olga", "paul", "quinn", "rosa", "sami", "tara",
    "umar", "vera", "wei", "xenia", "yusuf", "zoe", "amir", "bianca", "chen", "dana",
)  # fmt: skip
_LAST = (
    "schmidt", "garcia", "nguyen", "smith", "rossi", "kowalski", "tanaka", "silva", "muller",
    "dubois", "jensen", "novak", "okafor", "petrov", "haddad", "kim", "larsen", "moreau",
    "patel", "santos", "weber", "yilmaz", "costa", "fischer", "ito",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_BRANDS = (
    "Acme", "Nordwind", "Bluepeak", "Solace", "Vantage", "Kestrel", "Lumen", "Orchard",
    "Pinecrest", "Quartz", "Riverside", "Summit", "Tidal", "Urbana", "Verde", "Zenith",
)  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Essential", "Premium", "Smart", "Ultra", "Eco",
    "Pro", "Mini", "Wireless", "Organic", "Travel", "Family", "Everyday", "Limited",
)  # fmt: skip
_NOUNS = (
    ("Headphones", "Speaker", "Charger", "Keyboard", "Monitor", "Webcam"),
    ("Novel", "Cookbook", "Atlas", "Notebook", "Biography", "Comic"),
    ("Kettle", "Lamp", "Pillow", "Blender", "Vase", "Toaster"),
    ("T-Shirt", "Jacket", "Sneakers", "Scarf", "Hoodie", "Jeans"),
    ("Yoga Mat", "Football", "Water Bottle", "Tennis Racket", "Helmet", "Dumbbell"),
    ("Puzzle", "Robot Kit", "Plush Bear", "Board Game", "Kite", "Block Set"),
    ("Face Cream", "Shampoo", "Perfume", "Lip Balm", "Hair Dryer", "Soap"),
    ("Coffee Beans", "Olive Oil", "Green Tea", "Pasta", "Honey", "Granola"),
)
_ELEMENTS = ("add_to_cart", "wishlist", "reviews", "image_gallery", "size_guide")
_REFERRERS = ("search", "social", "email", "direct", "partner")

_DAY = 86_400
_SIGNUP_FIRST_DAY = 19_358  # 2023-01-01
_SIGNUP_END_DAY = 20_423  # 2025-12-01, exclusive
_PRODUCTS_FROM_S = 1_735_689_600  # 2025-01-01
_PRODUCTS_TO_S = 1_767_139_200  # 2025-12-31

#: Fewest users and products of a demo. Every defect kind is injected at least once per source,
#: so a small catalogue sends a large share of its files to dead-letter (25 products: 2 invalid
#: rows among 16 in a file, 12.5 %) and fails the contracts' reject-rate checks on a fresh demo;
#: with this many, every file of a demo of 500 events or more (up to 3 files) stays under 3 %.
MIN_USERS = 250
MIN_PRODUCTS = 250


@dataclass(frozen=True)
class Scale:
    """How many records of each kind ``size`` user events come with."""

    events: int
    users: int
    products: int
    orders: int

    @classmethod
    def for_size(cls, size: int) -> Scale:
        """Users, products and orders that go with ``size`` events."""
        return cls(
            size, max(MIN_USERS, size // 20), max(MIN_PRODUCTS, size // 200), max(100, size // 10)
        )
