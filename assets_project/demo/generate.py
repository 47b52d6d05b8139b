"""Deterministic demo data for the four landing sources of the online shop.

``generate(out, size, seed, files)`` writes file drops that look like what the upstream systems
deliver, including the mess they deliver, into ``out``::

    out/users/users_0001.csv ...              CRM export (CSV)
    out/products/products_0001.csv ...        catalog export (CSV)
    out/orders/orders_0001.csv ...            shop database export (CSV)
    out/user_events/user_events_0001.jsonl ... clickstream (JSON lines)
    out/_manifest.json                        what was written, per source and per file

Scale: ``size`` user events, ``max(50, size // 20)`` users, ``max(20, size // 200)`` products and
``max(100, size // 10)`` orders. Every source has ``files`` files.

Time
    Nothing depends on the clock: events and order changes fall in 2026-01-01 .. 2026-01-31 UTC
    (file ``i`` of a source covers the ``i``-th of ``files`` equal slices of that month), users
    signed up 2023-01-01 .. 2025-11-30 and products were listed during 2025. The same
    ``(size, seed, files)`` gives byte-identical files; another seed gives other data. Random
    streams are keyed by source, file and chunk, so the output also depends on ``CHUNK_ROWS``.

Formats
    CSV files have a header, ``\\n`` line ends, UTF-8 without BOM, and quote a field only when it
    holds a comma or a quote. CSV timestamps are ``2026-01-05 10:11:12`` (UTC, no zone suffix),
    dates ``2026-01-05``, money has exactly two decimals (``12.50``). Event lines are compact JSON
    objects with the keys ``event_id``, ``user_id``, ``event_type``, ``event_timestamp``
    (``2026-01-05T10:11:12Z``) and ``properties``; purchase events carry ``properties.amount`` as a
    JSON number with two decimals, plus ``product_id``, ``quantity`` and ``currency``.

Versions
    A user's first version is in the file of its id block; about 20 % of users get a tier or
    region change (5 % a second one) in January 2026, written to the same or a later file with a
    later ``updated_at``. About 25 % of products get a price change the same way. Orders are a
    change log: ``pending`` at ``created_at`` then ``paid``, ``shipped``, ``delivered`` (some end
    ``cancelled`` or ``returned``), one row per status with a strictly later ``updated_at``, each in
    the file whose time slice holds its ``updated_at``; changes after 2026-01-31 are not exported.

Defects (counted per file and kind in the manifest)
    Defects are *extra* rows; no valid record is ever altered or dropped. Every user, product and
    order keeps at least one fully valid version, and every valid order and event references a
    user (and product) that has a valid version. Each kind is present at least once per source
    (``duplicate_across_files`` needs ``files >= 2``); the rates below are per valid row::

    duplicate_in_file       0.5 %  a valid line repeated a few lines later in the same file
    duplicate_across_files  0.3 %  a valid line of an earlier file repeated in a later file
    null_required           0.3 %  a required field empty (CSV) or null / missing (JSON)
    wrong_type              0.3 %  user_id "abc" or 12.5, quantity "2.5", unit_price "12,50",
                                   timestamp "2026-13-45 25:61:00", date "2025-02-30", ...
                                   (DuckDB's TRY_CAST('2.5' AS INTEGER) gives 3: integer
                                   checks need more than a cast)
    out_of_range            0.2 %  quantity 0 / -1 / 5000, price or amount < 0 or > 100000,
                                   product name over 200 or e-mail over 254 characters
    bad_pattern             0.2 %  e-mail without "@", dot or with a space, event_id that is no
                                   lower-case UUID (users and user_events only)
    unknown_enum            0.2 %  tier "platinum", status "lost", event_type "hover", ...
    malformed_json          0.1 %  a JSON line cut off in the middle (user_events only)
    non_object_json         0.1 %  a valid JSON line that is no object: [1,2], "x", 42
    late_event              0.5 %  of the last events file: valid events whose
                                   event_timestamp lies 2-10 days before that file's time slice

    An invalid CSV row is a copy of the first version of an existing record (each record is used
    at most once per kind) with one field broken and an ``updated_at`` (for orders also
    ``created_at``) *earlier* than every valid version of that record, so it can never win a
    "newest version" merge even if a check misses it. Invalid events get fresh event ids. With
    ``files=1`` the late events fall into 2025-12-22 .. 2025-12-30. Only duplicates and late events
    are valid records; ``invalid_rows`` in the manifest counts the rest.

Size
    Entities and their versions are numpy arrays (about 60 bytes per order version); lines are
    built with pyarrow compute in chunks of ``CHUNK_ROWS`` rows and written straight from the Arrow
    buffers, so 10 million events take about 15 s and stay around 0.5 GB of memory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

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

# Contract enums, in the order of the codes used below.
TIERS = ("free", "basic", "premium", "enterprise")
REGIONS = ("north_america", "europe", "asia_pacific", "latin_america", "middle_east_africa")
CATEGORIES = ("electronics", "books", "home", "clothing", "sports", "toys", "beauty", "grocery")
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "returned")
EVENT_TYPES = ("page_view", "click", "purchase", "signup", "logout")
_PENDING, _PAID, _SHIPPED, _DELIVERED, _CANCELLED, _RETURNED = range(6)
_PAGE_VIEW, _CLICK, _PURCHASE, _SIGNUP, _LOGOUT = range(5)

_TIER_P = (0.55, 0.25, 0.15, 0.05)
_REGION_P = (0.30, 0.32, 0.22, 0.10, 0.06)
_EVENT_P = (0.60, 0.25, 0.05, 0.02, 0.08)

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
        return cls(size, max(50, size // 20), max(20, size // 200), max(100, size // 10))


@dataclass(frozen=True)
class GenerationReport:
    """What ``generate`` wrote: the manifest (also in ``out/_manifest.json``) and the paths."""

    out: Path
    manifest: dict[str, Any]
    paths: tuple[Path, ...]
    seconds: float

    def rows(self, source: str) -> int:
        """Data lines written for ``source`` (headers excluded)."""
        return int(self.manifest["sources"][source]["rows"])

    def defects(self, source: str) -> dict[str, int]:
        """Rows injected per defect kind for ``source``."""
        return dict(self.manifest["sources"][source]["defects"])

    @property
    def events_per_second(self) -> float:
        """Valid user events generated per second of wall time (all sources included)."""
        return self.manifest["parameters"]["size"] / max(self.seconds, 1e-9)


# --------------------------------------------------------------------------- formatting


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for ``seed`` and a tuple of stream keys."""
    return np.random.default_rng([seed, *keys])


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _take(values: Sequence[str], codes: np.ndarray) -> pa.Array:
    return _strings(values).take(pa.array(codes))


def _int_str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays and Python strings."""
    return pc.binary_join_element_wise(*parts, "")


def _money(cents: np.ndarray) -> pa.Array:
    """Non-negative cents as ``"12.50"``."""
    frac = pc.utf8_lpad(_int_str(cents % 100), width=2, padding="0")
    return _join(_int_str(cents // 100), ".", frac)


def _fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray:
    """The characters of a string array whose values all have ``width`` bytes, as (n, width)."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    if n == 0:
        return np.empty((0, width), dtype=np.uint8)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if data.size != n * width:
        raise ValueError("values are not all of the same width")
    return data.reshape(n, width)


def _from_fixed_width(chars: np.ndarray) -> pa.Array:
    """A string array from an (n, width) array of ASCII bytes."""
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _csv_ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as ``2026-01-05 10:11:12``."""
    return pc.cast(pa.array(seconds.astype("datetime64[s]")), pa.string())


def _iso_ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as ``2026-01-05T10:11:12Z``."""
    chars = np.empty((len(seconds), 20), dtype=np.uint8)
    chars[:, :19] = _fixed_width_bytes(_csv_ts(seconds), 19)
    chars[:, 10] = ord("T")
    chars[:, 19] = ord("Z")
    return _from_fixed_width(chars)


def _date_str(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 as ``2026-01-05``."""
    return pc.cast(pa.array(days.astype("datetime64[D]")), pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuid_chars(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as an (n, 36) array of lower-case hex characters."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 0x0F]
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)  # 8-4-4-4-12 hex digits
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        chars[:, dst : dst + width] = hexed[:, src : src + width]
    return chars


def _fmt_ts(seconds: int, fmt: str = CSV_TIMESTAMP_FORMAT) -> str:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime(fmt)


def _fmt_date(day: int) -> str:
    return _fmt_ts(int(day) * _DAY, DATE_FORMAT)


def _fmt_money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _csv_line(fields: Sequence[str]) -> str:
    """One CSV line (with ``\\n``), quoting only fields that need it."""
    out = []
    for value in fields:
        if any(c in value for c in ',"\n\r'):
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out) + "\n"


def _window(file: int, files: int) -> tuple[int, int]:
    """Start and end (exclusive) epoch seconds of the time slice of ``file``."""
    return BASE_S + file * SPAN_S // files, BASE_S + (file + 1) * SPAN_S // files


def _window_file(seconds: np.ndarray, files: int) -> np.ndarray:
    """Index of the file whose time slice holds each timestamp (clipped to the month)."""
    return np.clip((seconds - BASE_S) * files // SPAN_S, 0, files - 1)


def _skewed(rng: np.random.Generator, ranked: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from ``ranked`` where early entries are much more likely (activity skew)."""
    return ranked[(len(ranked) * rng.random(n) ** 2).astype(np.int64)]


def _choice(rng: np.random.Generator, p: Sequence[float], n: int) -> np.ndarray:
    """``n`` codes ``0 .. len(p) - 1`` drawn with probabilities ``p``."""
    bounds = np.cumsum(p)
    codes = np.searchsorted(bounds, rng.random(n) * bounds[-1], side="right")
    return np.minimum(codes, len(p) - 1).astype(np.int64)


# --------------------------------------------------------------------------- the world


@dataclass
class _Table:
    """Valid rows of one CSV source as arrays, sorted by file; ``bounds[f]:bounds[f+1]``."""

    columns: dict[str, np.ndarray]
    bounds: np.ndarray

    def rows_per_file(self) -> list[int]:
        return [int(x) for x in np.diff(self.bounds)]


@dataclass
class _World:
    """Everything shared by the sources: the entities and their valid versions."""

    seed: int
    files: int
    scale: Scale
    user_rank: np.ndarray  # user indexes, most active first
    product_rank: np.ndarray
    u_first: np.ndarray
    u_last: np.ndarray
    u_domain: np.ndarray
    u_signup_day: np.ndarray
    u_tier: np.ndarray
    u_region: np.ndarray
    u_base_ts: np.ndarray
    p_brand: np.ndarray
    p_adjective: np.ndarray
    p_noun: np.ndarray
    p_category: np.ndarray
    p_price: np.ndarray  # cents, first version
    p_base_ts: np.ndarray
    o_user: np.ndarray
    o_product: np.ndarray
    o_quantity: np.ndarray
    o_price: np.ndarray
    o_created: np.ndarray
    users: _Table
    products: _Table
    orders: _Table

    def email(self, user: int) -> str:
        """The (valid) e-mail of user index ``user``."""
        return (
            f"{_FIRST[self.u_first[user]]}.{_LAST[self.u_last[user]]}{user + 1}"
            f"@{_DOMAINS[self.u_domain[user]]}"
        )

    def product_name(self, product: int) -> str:
        """The (valid) name of product index ``product``."""
        noun = _NOUNS[self.p_category[product]][self.p_noun[product]]
        return f"{_BRANDS[self.p_brand[product]]} {_ADJECTIVES[self.p_adjective[product]]} {noun}"


def _sorted_table(columns: dict[str, np.ndarray], files: int) -> _Table:
    order = np.lexsort((columns["id"], columns["ts"], columns["file"]))
    columns = {name: values[order] for name, values in columns.items()}
    bounds = np.searchsorted(columns["file"], np.arange(files + 1))
    return _Table(columns, bounds)


def _build_world(seed: int, files: int, scale: Scale) -> _World:
    rng = _rng(seed, _STREAM["world"])
    nu, np_, no = scale.users, scale.products, scale.orders

    # Users: first version in the file of the id block, tier/region changes in January.
    u_first = rng.integers(0, len(_FIRST), nu, dtype=np.int8)
    u_last = rng.integers(0, len(_LAST), nu, dtype=np.int8)
    u_domain = rng.integers(0, len(_DOMAINS), nu, dtype=np.int8)
    u_signup_day = rng.integers(_SIGNUP_FIRST_DAY, _SIGNUP_END_DAY, nu)
    u_tier = _choice(rng, _TIER_P, nu).astype(np.int8)
    u_region = _choice(rng, _REGION_P, nu).astype(np.int8)
    u_base_ts = u_signup_day * _DAY + rng.integers(3600, 30 * _DAY, nu)
    block = np.arange(nu) * files // nu
    upd1 = np.flatnonzero(rng.random(nu) < 0.20)
    t1 = BASE_S + rng.integers(0, SPAN_S - 7200, len(upd1))
    tier_change = rng.random(len(upd1)) < 0.7
    tier1 = np.where(tier_change, (u_tier[upd1] + rng.integers(1, 4, len(upd1))) % 4, u_tier[upd1])
    region1 = np.where(
        tier_change, u_region[upd1], (u_region[upd1] + rng.integers(1, 5, len(upd1))) % 5
    )
    file1 = np.maximum(block[upd1], _window_file(t1, files))
    second = np.flatnonzero(rng.random(len(upd1)) < 0.25)
    upd2 = upd1[second]
    t2 = t1[second] + 3600 + (rng.random(len(second)) * (END_S - 1 - t1[second] - 3600)).astype(int)
    tier2 = (tier1[second] + rng.integers(1, 4, len(second))) % 4
    users = _sorted_table(
        {
            "id": np.concatenate([np.arange(nu), upd1, upd2]),
            "ts": np.concatenate([u_base_ts, t1, t2]),
            "tier": np.concatenate([u_tier, tier1, tier2]),
            "region": np.concatenate([u_region, region1, region1[second]]),
            "file": np.concatenate(
                [block, file1, np.maximum(file1[second], _window_file(t2, files))]
            ),
        },
        files,
    )

    # Products: listed during 2025, a quarter get a price change in January.
    p_brand = rng.integers(0, len(_BRANDS), np_)
    p_adjective = rng.integers(0, len(_ADJECTIVES), np_)
    p_noun = rng.integers(0, len(_NOUNS[0]), np_)
    p_category = rng.integers(0, len(CATEGORIES), np_)
    euros = np.clip(np.exp(rng.normal(3.3, 1.0, np_)), 1.0, 4999.0)
    p_price = np.where(
        rng.random(np_) < 0.6, euros.astype(np.int64) * 100 + 99, np.round(euros * 100)
    ).astype(np.int64)
    p_base_ts = rng.integers(_PRODUCTS_FROM_S, _PRODUCTS_TO_S, np_)
    pblock = np.arange(np_) * files // np_
    changed = np.flatnonzero(rng.random(np_) < 0.25)
    pt = BASE_S + rng.integers(0, SPAN_S, len(changed))
    new_price = np.maximum(99, np.round(p_price[changed] * rng.uniform(0.8, 1.25, len(changed))))
    new_price = np.where(new_price == p_price[changed], new_price + 100, new_price).astype(np.int64)
    products = _sorted_table(
        {
            "id": np.concatenate([np.arange(np_), changed]),
            "ts": np.concatenate([p_base_ts, pt]),
            "price": np.concatenate([p_price, new_price]),
            "file": np.concatenate([pblock, np.maximum(pblock[changed], _window_file(pt, files))]),
        },
        files,
    )

    # Orders: one row per status change, ids in order of creation.
    user_rank = rng.permutation(nu)
    product_rank = rng.permutation(np_)
    o_user = _skewed(rng, user_rank, no)
    o_product = _skewed(rng, product_rank, no)
    o_quantity = np.minimum(rng.geometric(0.6, no), 10).astype(np.int16)
    o_price = p_price[o_product]
    o_price = np.where(rng.random(no) < 0.1, np.round(o_price * 0.9), o_price).astype(np.int32)
    o_created = np.sort(rng.integers(BASE_S, END_S - 3600, no))
    ids: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    codes: list[np.ndarray] = []

    def change(mask: np.ndarray, when: np.ndarray, code: np.ndarray | int) -> None:
        """Record a status change for the orders in ``mask`` unless it is after the export."""
        keep = np.flatnonzero(mask & (when < END_S))
        ids.append(keep.astype(np.int32))
        stamps.append(when[keep])
        codes.append(np.broadcast_to(np.asarray(code, dtype=np.int8), (no,))[keep])

    everyone = np.ones(no, dtype=bool)
    change(everyone, o_created, _PENDING)
    early_cancel = rng.random(no) < 0.06
    when = o_created + np.where(
        early_cancel, rng.integers(600, 2 * _DAY, no), rng.integers(60, 6 * 3600, no)
    )
    change(everyone, when, np.where(early_cancel, _CANCELLED, _PAID))
    late_cancel = rng.random(no) < 0.04
    when += np.where(
        late_cancel, rng.integers(3600, _DAY, no), rng.integers(6 * 3600, 3 * _DAY, no)
    )
    change(~early_cancel, when, np.where(late_cancel, _CANCELLED, _SHIPPED))
    shipped = ~early_cancel & ~late_cancel
    when += rng.integers(_DAY, 5 * _DAY, no)
    change(shipped, when, _DELIVERED)
    when += rng.integers(2 * _DAY, 14 * _DAY, no)
    change(shipped & (rng.random(no) < 0.08), when, _RETURNED)
    del when, early_cancel, late_cancel, shipped, everyone
    ts = np.concatenate(stamps)
    stamps.clear()
    orders = _sorted_table(
        {
            "id": np.concatenate(ids),
            "ts": ts,
            "status": np.concatenate(codes),
            "file": _window_file(ts, files).astype(np.int16),
        },
        files,
    )
    return _World(
        seed=seed,
        files=files,
        scale=scale,
        user_rank=user_rank,
        product_rank=product_rank,
        u_first=u_first,
        u_last=u_last,
        u_domain=u_domain,
        u_signup_day=u_signup_day,
        u_tier=u_tier,
        u_region=u_region,
        u_base_ts=u_base_ts,
        p_brand=p_brand,
        p_adjective=p_adjective,
        p_noun=p_noun,
        p_category=p_category,
        p_price=p_price,
        p_base_ts=p_base_ts,
        o_user=o_user,
        o_product=o_product,
        o_quantity=o_quantity,
        o_price=o_price,
        o_created=o_created,
        users=users,
        products=products,
        orders=orders,
    )


# --------------------------------------------------------------------------- valid lines


def _user_lines(w: _World, cols: dict[str, np.ndarray], lo: int, hi: int) -> pa.Array:
    user = cols["id"][lo:hi]
    email = _join(
        _take(_FIRST, w.u_first[user]),
        ".",
        _take(_LAST, w.u_last[user]),
        _int_str(user + 1),
        "@",
        _take(_DOMAINS, w.u_domain[user]),
    )
    return _join(
        _int_str(user + 1),
        ",",
        email,
        ",",
        _date_str(w.u_signup_day[user]),
        ",",
        _take(TIERS, cols["tier"][lo:hi]),
        ",",
        _take(REGIONS, cols["region"][lo:hi]),
        ",",
        _csv_ts(cols["ts"][lo:hi]),
        "\n",
    )


def _product_lines(w: _World, cols: dict[str, np.ndarray], lo: int, hi: int) -> pa.Array:
    product = cols["id"][lo:hi]
    category = w.p_category[product]
    nouns = [noun for group in _NOUNS for noun in group]
    name = _join(
        _take(_BRANDS, w.p_brand[product]),
        " ",
        _take(_ADJECTIVES, w.p_adjective[product]),
        " ",
        _take(nouns, category * len(_NOUNS[0]) + w.p_noun[product]),
    )
    return _join(
        _int_str(product + 1),
        ",",
        name,
        ",",
        _take(CATEGORIES, category),
        ",",
        _money(cols["price"][lo:hi]),
        ",",
        _csv_ts(cols["ts"][lo:hi]),
        "\n",
    )


def _order_lines(w: _World, cols: dict[str, np.ndarray], lo: int, hi: int) -> pa.Array:
    order = cols["id"][lo:hi]
    return _join(
        _int_str(order + 1),
        ",",
        _int_str(w.o_user[order] + 1),
        ",",
        _int_str(w.o_product[order] + 1),
        ",",
        _int_str(w.o_quantity[order]),
        ",",
        _money(w.o_price[order]),
        ",",
        _take(STATUSES, cols["status"][lo:hi]),
        ",",
        _csv_ts(w.o_created[order]),
        ",",
        _csv_ts(cols["ts"][lo:hi]),
        "\n",
    )


def _event_lines(
    w: _World,
    rng: np.random.Generator,
    window: tuple[int, int],
    n_file: int,
    lo: int,
    hi: int,
    late_rows: np.ndarray,
) -> pa.Array:
    """Valid events ``lo:hi`` of a file with ``n_file`` events spread over ``window``.

    Timestamps rise through the file; rows in ``late_rows`` (file positions) are moved 2-10 days
    before the window instead.
    """
    m = hi - lo
    start, end = window
    t0 = start + (end - start) * lo // n_file
    t1 = max(start + (end - start) * hi // n_file, t0 + 1)
    ts = np.sort(rng.integers(t0, t1, m))
    late = late_rows[(late_rows >= lo) & (late_rows < hi)] - lo
    ts[late] = start - rng.integers(2 * _DAY, 10 * _DAY + 1, len(late))

    event_id = _from_fixed_width(_uuid_chars(rng, m))
    user = _skewed(rng, w.user_rank, m)
    kind = _choice(rng, _EVENT_P, m)
    product = _skewed(rng, w.product_rank, m)
    quantity = np.minimum(rng.geometric(0.7, m), 5)
    extra = rng.integers(0, 5, m)
    session = rng.integers(30, 7200, m)

    order = np.argsort(kind, kind="stable")
    counts = np.bincount(kind, minlength=len(EVENT_TYPES))
    parts = []
    for code, rows in enumerate(np.split(order, np.cumsum(counts)[:-1])):
        pid = _int_str(product[rows] + 1)
        if code == _PAGE_VIEW:
            parts.append(_join('{"page":"/p/', pid, '"}'))
        elif code == _CLICK:
            parts.append(_join('{"page":"/p/', pid, '","element":"', _take(_ELEMENTS, extra[rows]), '"}'))  # fmt: skip
        elif code == _PURCHASE:
            amount = _money(w.p_price[product[rows]] * quantity[rows])
            qty = _int_str(quantity[rows])
            parts.append(_join('{"product_id":', pid, ',"quantity":', qty, ',"amount":', amount, ',"currency":"EUR"}'))  # fmt: skip
        elif code == _SIGNUP:
            parts.append(_join('{"referrer":"', _take(_REFERRERS, extra[rows]), '"}'))
        else:
            parts.append(_join('{"session_seconds":', _int_str(session[rows]), "}"))
    inverse = np.empty(m, dtype=np.int64)
    inverse[order] = np.arange(m)
    properties = pa.concat_arrays(parts).take(pa.array(inverse))
    return _join(
        '{"event_id":"',
        event_id,
        '","user_id":',
        _int_str(user + 1),
        ',"event_type":"',
        _take(EVENT_TYPES, kind),
        '","event_timestamp":"',
        _iso_ts(ts),
        '","properties":',
        properties,
        "}\n",
    )


# --------------------------------------------------------------------------- invalid lines


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(0, len(options)))]


def _pick_v(variant: int, options: Sequence[Any]) -> Any:
    return options[variant % len(options)]


def _user_defect(w: _World, rng: np.random.Generator, kind: str, user: int) -> str:
    day0 = int(w.u_signup_day[user]) * _DAY
    row = {
        "user_id": str(user + 1),
        "email": w.email(user),
        "signup_date": _fmt_date(w.u_signup_day[user]),
        "user_tier": TIERS[w.u_tier[user]],
        "geographic_region": REGIONS[w.u_region[user]],
        # Earlier than the first valid version, so it never wins a newest-version merge.
        "updated_at": _fmt_ts(day0 + int(rng.random() * (int(w.u_base_ts[user]) - day0))),
    }
    if kind == NULL_REQUIRED:
        row[_pick(rng, list(row))] = ""
    elif kind == WRONG_TYPE:
        column, value = _pick(
            rng,
            [
                ("user_id", "abc"),
                ("user_id", f"u{user + 1}"),
                ("signup_date", "2025-02-30"),
                ("signup_date", "31/12/2024"),
                ("updated_at", "2026-13-45 25:61:00"),
            ],
        )
        row[column] = value
    elif kind == OUT_OF_RANGE:
        local = row["email"].split("@")[0]
        row["email"] = f"{local}.{'x' * 250}@{row['email'].split('@')[1]}"  # > 254 characters
    elif kind == BAD_PATTERN:
        local, domain = row["email"].split("@")
        row["email"] = _pick(rng, [f"{local}.{domain}", f"{local}@localhost", f"{local} @{domain}"])
    elif kind == UNKNOWN_ENUM:
        if rng.random() < 0.5:
            row["user_tier"] = _pick(rng, ["platinum", "gold", "vip"])
        else:
            row["geographic_region"] = _pick(rng, ["antarctica", "emea", "mars"])
    return _csv_line(list(row.values()))


def _product_defect(w: _World, rng: np.random.Generator, kind: str, product: int) -> str:
    price = int(w.p_price[product])
    row = {
        "product_id": str(product + 1),
        "name": w.product_name(product),
        "category": CATEGORIES[w.p_category[product]],
        "unit_price": _fmt_money(price),
        "updated_at": _fmt_ts(int(w.p_base_ts[product]) - int(rng.integers(3600, 30 * _DAY))),
    }
    if kind == NULL_REQUIRED:
        row[_pick(rng, list(row))] = ""
    elif kind == WRONG_TYPE:
        column, value = _pick(
            rng,
            [
                ("product_id", f"p-{product + 1}"),
                ("unit_price", _fmt_money(price).replace(".", ",")),
                ("unit_price", "EUR " + _fmt_money(price)),
                ("updated_at", "2026-13-45 25:61:00"),
            ],
        )
        row[column] = value
    elif kind == OUT_OF_RANGE:
        column, value = _pick(
            rng,
            [
                ("unit_price", _fmt_money(-price)),
                ("unit_price", _fmt_money(int(rng.integers(10_000_001, 100_000_000)))),
                ("name", " ".join([row["name"]] * (201 // len(row["name"]) + 1))),
            ],
        )
        row[column] = value
    elif kind == UNKNOWN_ENUM:
        row["category"] = _pick(rng, ["furniture", "garden", "automotive"])
    return _csv_line(list(row.values()))


def _order_defect(w: _World, rng: np.random.Generator, kind: str, order: int) -> str:
    ts = _fmt_ts(int(w.o_created[order]) - int(rng.integers(60, _DAY)))
    price = int(w.o_price[order])
    row = {
        "order_id": str(order + 1),
        "user_id": str(int(w.o_user[order]) + 1),
        "product_id": str(int(w.o_product[order]) + 1),
        "quantity": str(int(w.o_quantity[order])),
        "unit_price": _fmt_money(price),
        "status": STATUSES[_PENDING],
        # Earlier than the first valid version (which has updated_at == created_at).
        "created_at": ts,
        "updated_at": ts,
    }
    if kind == NULL_REQUIRED:
        row[_pick(rng, list(row))] = ""
    elif kind == WRONG_TYPE:
        column, value = _pick(
            rng,
            [
                ("user_id", "abc"),
                ("quantity", f"{int(w.o_quantity[order])}.5"),
                ("unit_price", _fmt_money(price).replace(".", ",")),
                ("created_at", "2026-13-45 10:00:00"),
            ],
        )
        row[column] = value
    elif kind == OUT_OF_RANGE:
        column, value = _pick(
            rng,
            [
                ("quantity", "0"),
                ("quantity", "-1"),
                ("quantity", "5000"),
                ("unit_price", _fmt_money(-price)),
                ("unit_price", _fmt_money(int(rng.integers(10_000_001, 100_000_000)))),
            ],
        )
        row[column] = value
    elif kind == UNKNOWN_ENUM:
        row["status"] = _pick(rng, ["lost", "refunded", "on_hold"])
    return _csv_line(list(row.values()))


def _event_defects(
    w: _World, rng: np.random.Generator, kind: str, window: tuple[int, int], n: int
) -> list[str]:
    """``n`` invalid event lines (with fresh event ids) of ``kind``, dated inside ``window``."""
    event_ids = _uuid_chars(rng, n).view("S36").ravel().astype(str).tolist()
    users = (_skewed(rng, w.user_rank, n) + 1).tolist()
    products = _skewed(rng, w.product_rank, n)
    quantities = rng.integers(1, 4, n)
    amounts = [_fmt_money(int(c)) for c in w.p_price[products] * quantities]
    codes = _choice(rng, _EVENT_P, n)
    if kind in (OUT_OF_RANGE, MALFORMED_JSON):
        codes[:] = _PURCHASE
    elif kind == WRONG_TYPE:
        codes[rng.random(n) < 0.3] = _PURCHASE
    stamps = _iso_ts(rng.integers(*window, n)).to_pylist()
    variants = rng.integers(0, 120, n).tolist()  # picks a variant; 120 is divisible by 2..6
    numbers = rng.integers(1, 10**9, (n, 2)).tolist()
    lines = []
    for i in range(n):
        v = variants[i]
        if kind == NON_OBJECT_JSON:
            a, b = numbers[i]
            lines.append(_pick_v(v, [f"[{a},{b}]", json.dumps(f"x-{event_ids[i]}"), str(a * b)]))
            continue
        code = int(codes[i])
        # JSON fragments per key; None leaves the key out.
        fields: dict[str, str | None] = {
            "event_id": f'"{event_ids[i]}"',
            "user_id": str(users[i]),
            "event_type": f'"{EVENT_TYPES[code]}"',
            "event_timestamp": f'"{stamps[i]}"',
        }
        product = int(products[i]) + 1
        if code == _PURCHASE:
            props = {"product_id": str(product), "quantity": str(quantities[i])}
            props["amount"] = amounts[i]
        else:
            props = {"page": f'"/p/{product}"'}
        if kind == NULL_REQUIRED:
            column = _pick_v(v, ["event_id", "user_id", "event_type", "event_timestamp"])
            fields[column] = "null" if v % 2 else None
        elif kind == WRONG_TYPE and code == _PURCHASE:
            props["amount"] = json.dumps(amounts[i].replace(".", ","))
        elif kind == WRONG_TYPE:
            column, value = _pick_v(
                v,
                [
                    ("user_id", '"abc"'),
                    ("user_id", f"{users[i]}.5"),
                    ("event_timestamp", '"2026-13-45T25:61:00Z"'),
                ],
            )
            fields[column] = value
        elif kind == OUT_OF_RANGE:
            props["amount"] = _pick_v(v, ["-5.00", "1000000000.00", f"-{amounts[i]}"])
        elif kind == BAD_PATTERN:
            uuid = event_ids[i]
            options = [uuid.replace("-", ""), f"evt-{uuid[:8]}"]
            if uuid.upper() != uuid:
                options.append(uuid.upper())
            fields["event_id"] = json.dumps(_pick_v(v, options))
        elif kind == UNKNOWN_ENUM:
            fields["event_type"] = json.dumps(_pick_v(v, ["hover", "scroll", "add_to_cart"]))
        if code == _PURCHASE:
            props["currency"] = '"EUR"'
        body = ",".join(f'"{k}":{x}' for k, x in fields.items() if x is not None)
        properties = ",".join(f'"{k}":{x}' for k, x in props.items())
        line = "{" + body + ',"properties":{' + properties + "}}"
        if kind == MALFORMED_JSON:
            # Cut after the event id (so cut lines stay distinct) and before the closing braces.
            line = line[: 60 + numbers[i][0] % (len(line) - 61)]
        lines.append(line)
    return [line + "\n" for line in lines]


# --------------------------------------------------------------------------- writing


@dataclass
class _FilePlan:
    """What goes into one file besides its valid rows."""

    path: Path
    n_valid: int
    defects: dict[str, int]
    invalid: list[str]  # invalid lines (already generated)
    capture: np.ndarray  # positions of valid rows that later files copy
    across: list[str]  # lines copied from earlier files
    late_rows: np.ndarray  # positions of late events (user_events only)
    across_targets: list[int]  # for each captured row, the later file that repeats it

    def stats(self) -> dict[str, Any]:
        duplicates = self.defects[DUPLICATE_IN_FILE] + self.defects[DUPLICATE_ACROSS_FILES]
        invalid = sum(n for kind, n in self.defects.items() if kind in INVALID_KINDS)
        return {
            "clean_rows": self.n_valid,
            "defects": dict(sorted(self.defects.items())),
            "invalid_rows": invalid,
            "rows": self.n_valid + duplicates + invalid,
        }


def _distinct(rng: np.random.Generator, population: int, k: int) -> np.ndarray:
    """``k`` distinct draws from ``range(population)`` (with repeats only if impossible)."""
    return rng.choice(population, size=k, replace=k > population)


def _plan_source(
    source: str,
    w: _World,
    out: Path,
    rows_per_file: list[int],
    make_invalid: Callable[[np.random.Generator, str, int, np.ndarray], list[str]],
    n_entities: int,
) -> list[_FilePlan]:
    """Decide how many defects of each kind go into which file, and make the invalid lines.

    ``make_invalid(rng, kind, file, entities)`` returns one invalid line per entity index.
    """
    seed, files = w.seed, w.files
    rng = _rng(seed, _STREAM[source], 0)
    sizes = np.asarray(rows_per_file, dtype=np.float64)
    total = int(sizes.sum())
    ext = _EXTENSION[source]
    plans = [
        _FilePlan(
            path=out / source / f"{source}_{f + 1:04d}.{ext}",
            n_valid=rows_per_file[f],
            defects=dict.fromkeys(SOURCE_DEFECTS[source], 0),
            invalid=[],
            capture=np.empty(0, dtype=np.int64),
            across=[],
            late_rows=np.empty(0, dtype=np.int64),
            across_targets=[],
        )
        for f in range(files)
    ]
    for kind in SOURCE_DEFECTS[source]:
        weights = sizes.copy()
        base = total
        if kind == LATE_EVENT:
            weights[:-1] = 0
            base = rows_per_file[-1]
        elif kind == DUPLICATE_ACROSS_FILES:
            weights[: int(np.argmax(sizes > 0)) + 1] = 0  # needs an earlier file with rows
        if weights.sum() == 0:
            continue
        count = max(1, round(DEFECT_RATES[kind] * base))
        per_file = rng.multinomial(count, weights / weights.sum())
        entities = (
            _distinct(rng, n_entities, count) if n_entities else np.zeros(count, dtype=np.int64)
        )
        used = 0
        for f, n in enumerate(per_file):
            n = int(n)
            plans[f].defects[kind] = n
            if kind in INVALID_KINDS:
                frng = _rng(seed, _STREAM[source], 3, f, SOURCE_DEFECTS[source].index(kind))
                plans[f].invalid.extend(make_invalid(frng, kind, f, entities[used : used + n]))
            elif kind == LATE_EVENT and n:
                plans[f].late_rows = np.sort(_distinct(rng, rows_per_file[f], n))
            used += n

    # Duplicates across files: distinct source rows per earlier file, shared among later files.
    for g in range(1, files):
        n = plans[g].defects.get(DUPLICATE_ACROSS_FILES, 0)
        if n:
            earlier = sizes[:g]
            for f, k in enumerate(rng.multinomial(n, earlier / earlier.sum())):
                plans[f].across_targets.extend([g] * int(k))
    for plan in plans:
        if plan.across_targets:
            plan.capture = _distinct(rng, plan.n_valid, len(plan.across_targets))
    return plans


def _line_buffer(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The characters of a string array and the offsets of its values into them."""
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    data = lines.buffers()[2]
    return (memoryview(data) if data is not None else memoryview(b"")), offsets


def _write_file(
    plan: _FilePlan,
    header: str | None,
    build: Callable[[int, int, int], pa.Array],
    rng: np.random.Generator,
) -> list[str]:
    """Write one file: valid rows from ``build(chunk, lo, hi)`` with the planned extras mixed in.

    Invalid and copied lines go before a random valid row; a duplicate goes 1-49 rows after its
    original (within the same chunk). Returns the lines of the rows in ``plan.capture`` (in that
    order) for later files.
    """
    n = plan.n_valid
    extra = plan.invalid + plan.across
    slots = rng.integers(0, n + 1, len(extra))
    by_slot = np.argsort(slots, kind="stable")
    slots = slots[by_slot]
    dup_rows = np.sort(rng.integers(0, max(n, 1), plan.defects[DUPLICATE_IN_FILE]))
    dup_gap = rng.integers(1, 50, len(dup_rows))
    capture_order = np.argsort(plan.capture, kind="stable")
    capture_sorted = plan.capture[capture_order]
    captured: list[str] = [""] * len(plan.capture)

    plan.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.path.with_name(f".{plan.path.name}.tmp")
    with open(tmp, "wb", buffering=1 << 20) as handle:
        if header is not None:
            handle.write(header.encode("utf-8") + b"\n")
        for chunk, lo in enumerate(range(0, n, CHUNK_ROWS)):
            hi = min(n, lo + CHUNK_ROWS)
            data, offsets = _line_buffer(build(chunk, lo, hi))
            # (slot, tie-break, line): the line goes right before valid row `slot`.
            inserts: list[tuple[int, int, bytes]] = []
            d_lo, d_hi = np.searchsorted(dup_rows, [lo, hi])
            for row, gap in zip(
                dup_rows[d_lo:d_hi].tolist(), dup_gap[d_lo:d_hi].tolist(), strict=True
            ):
                line = bytes(data[offsets[row - lo] : offsets[row - lo + 1]])
                inserts.append((min(row + gap, hi), len(inserts), line))
            e_lo = int(np.searchsorted(slots, lo))
            e_hi = len(slots) if hi == n else int(np.searchsorted(slots, hi))
            for slot, i in zip(slots[e_lo:e_hi].tolist(), by_slot[e_lo:e_hi].tolist(), strict=True):
                inserts.append((slot, len(inserts), extra[i].encode("utf-8")))
            inserts.sort()
            written = lo
            for slot, _, line in inserts:
                if slot > written:
                    handle.write(data[offsets[written - lo] : offsets[slot - lo]])
                    written = slot
                handle.write(line)
            handle.write(data[offsets[written - lo] : offsets[hi - lo]])

            c_lo, c_hi = np.searchsorted(capture_sorted, [lo, hi])
            for i, row in zip(
                capture_order[c_lo:c_hi].tolist(), capture_sorted[c_lo:c_hi].tolist(), strict=True
            ):
                captured[i] = bytes(data[offsets[row - lo] : offsets[row - lo + 1]]).decode()
    os.replace(tmp, plan.path)
    return captured


def _write_source(
    source: str,
    w: _World,
    plans: list[_FilePlan],
    build: Callable[[int, int, int, int], pa.Array],
) -> dict[str, Any]:
    """Write all files of a source in order, passing copied lines on to later files."""
    stream = _STREAM[source]
    for f, plan in enumerate(plans):
        captured = _write_file(
            plan,
            _HEADER.get(source),
            lambda chunk, lo, hi, f=f: build(f, chunk, lo, hi),
            _rng(w.seed, stream, 1, f),
        )
        for g, line in zip(plan.across_targets, captured, strict=True):
            plans[g].across.append(line)
        log.debug("wrote %s", plan.path)
    files = {f"{source}/{p.path.name}": p.stats() for p in plans}
    totals: dict[str, Any] = {
        key: sum(s[key] for s in files.values()) for key in ("clean_rows", "invalid_rows", "rows")
    }
    totals["defects"] = {
        kind: sum(s["defects"][kind] for s in files.values())
        for kind in sorted(SOURCE_DEFECTS[source])
    }
    totals["files"] = files
    return totals


def _csv_source(source: str, w: _World, out: Path) -> dict[str, Any]:
    table, lines, defect, n_entities = {
        USERS: (w.users, _user_lines, _user_defect, w.scale.users),
        PRODUCTS: (w.products, _product_lines, _product_defect, w.scale.products),
        ORDERS: (w.orders, _order_lines, _order_defect, w.scale.orders),
    }[source]
    plans = _plan_source(
        source,
        w,
        out,
        table.rows_per_file(),
        lambda rng, kind, f, entities: [defect(w, rng, kind, int(e)) for e in entities],
        n_entities,
    )

    def build(f: int, chunk: int, lo: int, hi: int) -> pa.Array:
        start = int(table.bounds[f])
        return lines(w, table.columns, start + lo, start + hi)

    return _write_source(source, w, plans, build)


def _events_source(w: _World, out: Path) -> dict[str, Any]:
    files, size = w.files, w.scale.events
    per_file = [size // files + (1 if f < size % files else 0) for f in range(files)]
    plans = _plan_source(
        USER_EVENTS,
        w,
        out,
        per_file,
        lambda rng, kind, f, entities: _event_defects(
            w, rng, kind, _window(f, files), len(entities)
        ),
        0,
    )

    def build(f: int, chunk: int, lo: int, hi: int) -> pa.Array:
        rng = _rng(w.seed, _STREAM[USER_EVENTS], 2, f, chunk)
        return _event_lines(w, rng, _window(f, files), per_file[f], lo, hi, plans[f].late_rows)

    return _write_source(USER_EVENTS, w, plans, build)


# --------------------------------------------------------------------------- entry point


def output_paths(out: Path, files: int) -> list[Path]:
    """The files ``generate`` writes into ``out`` (sources in order, then the manifest)."""
    paths = [
        out / source / f"{source}_{f + 1:04d}.{_EXTENSION[source]}"
        for source in SOURCES
        for f in range(files)
    ]
    return [*paths, out / MANIFEST_NAME]


def _existing_outputs(out: Path) -> list[Path]:
    found = [
        path
        for source in SOURCES
        for path in sorted((out / source).glob(f"{source}_*.{_EXTENSION[source]}"))
    ]
    if (out / MANIFEST_NAME).exists():
        found.append(out / MANIFEST_NAME)
    return found


def generate(
    out: Path, size: int, seed: int, files: int = 2, *, overwrite: bool = False
) -> GenerationReport:
    """Write demo drops for all sources into ``out`` and return what was written.

    ``size`` is the number of (distinct, valid) user events; users, products and orders scale with
    it (see ``Scale``). Each source gets ``files`` files. Refuses to write into a folder that
    already holds generated drops unless ``overwrite`` is set, which first deletes them (a stale
    ``users_0003.csv`` from a run with more files would otherwise stay behind).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, not {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if isinstance(files, bool) or not isinstance(files, int) or not 1 <= files <= MAX_FILES:
        raise ValueError(f"files must be an integer from 1 to {MAX_FILES}, not {files!r}")
    if files > size:
        raise ValueError(f"files ({files}) must not exceed size ({size})")
    out = Path(out)
    existing = _existing_outputs(out)
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds generated files ({existing[0]}, ...); "
                "use another folder or overwrite=True (--overwrite)"
            )
        for path in existing:
            path.unlink()

    started = time.perf_counter()
    scale = Scale.for_size(size)
    world = _build_world(seed, files, scale)
    sources = {
        USERS: _csv_source(USERS, world, out),
        PRODUCTS: _csv_source(PRODUCTS, world, out),
        ORDERS: _csv_source(ORDERS, world, out),
        USER_EVENTS: _events_source(world, out),
    }
    manifest: dict[str, Any] = {
        "generator": "assets_project.demo",
        "generator_version": GENERATOR_VERSION,
        "parameters": {
            "base_date": BASE_DATE,
            "chunk_rows": CHUNK_ROWS,
            "days": DAYS,
            "files": files,
            "seed": seed,
            "size": size,
        },
        "entities": {
            ORDERS: scale.orders,
            PRODUCTS: scale.products,
            USER_EVENTS: scale.events,
            USERS: scale.users,
        },
        "formats": {
            ORDERS: {"created_at": CSV_TIMESTAMP_FORMAT, "updated_at": CSV_TIMESTAMP_FORMAT},
            PRODUCTS: {"updated_at": CSV_TIMESTAMP_FORMAT},
            USER_EVENTS: {"event_timestamp": EVENT_TIMESTAMP_FORMAT},
            USERS: {"signup_date": DATE_FORMAT, "updated_at": CSV_TIMESTAMP_FORMAT},
        },
        "sources": sources,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    tmp = out / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, out / MANIFEST_NAME)
    seconds = time.perf_counter() - started
    log.info("generated %s events into %s in %.1f s", size, out, seconds)
    return GenerationReport(
        out=out, manifest=manifest, paths=tuple(output_paths(out, files)), seconds=seconds
    )
