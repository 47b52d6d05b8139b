"""Defect injectors: one invalid line per record (CSV sources) or a batch of invalid events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from assets_project.demo.generate.formatting import (
    _csv_line,
    _fmt_date,
    _fmt_money,
    _fmt_ts,
    _iso_ts,
    _uuid_chars,
)
from assets_project.demo.generate.vocabulary import (
    _DAY,
    _EVENT_P,
    _PENDING,
    _PURCHASE,
    BAD_PATTERN,
    CATEGORIES,
    EVENT_TYPES,
    MALFORMED_JSON,
    NON_OBJECT_JSON,
    NULL_REQUIRED,
    OUT_OF_RANGE,
    REGIONS,
    STATUSES,
    TIERS,
    UNKNOWN_ENUM,
    WRONG_TYPE,
)
from assets_project.demo.generate.world import _choice, _skewed, _World


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
