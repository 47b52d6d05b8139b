"""The world model: random streams, time slices, and every entity with its valid versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assets_project.demo.generate.vocabulary import (
    _ADJECTIVES,
    _BRANDS,
    _CANCELLED,
    _DAY,
    _DELIVERED,
    _DOMAINS,
    _FIRST,
    _LAST,
    _NOUNS,
    _PAID,
    _PENDING,
    _PRODUCTS_FROM_S,
    _PRODUCTS_TO_S,
    _REGION_P,
    _RETURNED,
    _SHIPPED,
    _SIGNUP_END_DAY,
    _SIGNUP_FIRST_DAY,
    _STREAM,
    _TIER_P,
    BASE_S,
    CATEGORIES,
    END_S,
    SPAN_S,
    Scale,
)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for ``seed`` and a tuple of stream keys."""
    return np.random.default_rng([seed, *keys])


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
