"""Valid records: the lines of the valid rows of each source, built in chunks with Arrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from assets_project.demo.generate.formatting import (
    _csv_ts,
    _date_str,
    _from_fixed_width,
    _int_str,
    _iso_ts,
    _join,
    _money,
    _take,
    _uuid_chars,
)
from assets_project.demo.generate.vocabulary import (
    _ADJECTIVES,
    _BRANDS,
    _CLICK,
    _DAY,
    _DOMAINS,
    _ELEMENTS,
    _EVENT_P,
    _FIRST,
    _LAST,
    _NOUNS,
    _PAGE_VIEW,
    _PURCHASE,
    _REFERRERS,
    _SIGNUP,
    CATEGORIES,
    EVENT_TYPES,
    REGIONS,
    STATUSES,
    TIERS,
)
from assets_project.demo.generate.world import _choice, _skewed, _World


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
