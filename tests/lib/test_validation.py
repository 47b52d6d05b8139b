from __future__ import annotations

import pyarrow as pa

from assets_project.lib.contracts import Column, load_contract
from assets_project.lib.validation import compile_validation, new_connection, run_validation

USER_COLUMNS = ("user_id", "email", "signup_date", "user_tier", "geographic_region", "updated_at")


def _users_batch(rows: list[dict[str, str]]) -> pa.Table:
    columns = {"_source_line": pa.array(range(1, len(rows) + 1), pa.int64())}
    for name in rows[0]:
        columns[name] = pa.array([r[name] for r in rows], pa.string())
    return pa.table(columns)


GOOD_USER = {
    "user_id": "7",
    "email": "a@b.co",
    "signup_date": "2026-01-02",
    "user_tier": "free",
    "geographic_region": "europe",
    "updated_at": "2026-01-03 04:05:06",
}


def test_valid_row_is_typed() -> None:
    query = compile_validation(load_contract("users"), USER_COLUMNS)
    valid, rejected = run_validation(new_connection(), query, _users_batch([GOOD_USER]))
    assert rejected.num_rows == 0
    row = valid.to_pylist()[0]
    assert row["user_id"] == 7
    assert str(row["signup_date"]) == "2026-01-02"
    assert str(row["updated_at"]) == "2026-01-03 04:05:06"


def test_every_broken_rule_is_reported_with_column_and_value() -> None:
    bad = {
        **GOOD_USER,
        "user_id": "2.5",
        "email": "",
        "user_tier": "platinum",
        "updated_at": "2026-13-45",
    }
    users = load_contract("users")
    query = compile_validation(users, (*USER_COLUMNS, "unexpected"))
    batch = _users_batch([{**bad, "unexpected": "kept"}])
    valid, rejected = run_validation(new_connection(), query, batch)
    assert valid.num_rows == 0
    reasons = {(r["column"], r["rule"], r["value"]) for r in rejected["_reasons"].to_pylist()[0]}
    assert reasons == {
        ("user_id", "not a valid bigint", "2.5"),
        ("email", "required value is missing", None),
        ("user_tier", f"not one of {', '.join(users.enum('user_tier'))}", "platinum"),
        ("updated_at", "not a valid timestamp", "2026-13-45"),
    }
    # The original record is kept whole, including columns the contract does not know.
    assert '"unexpected":"kept"' in rejected["_record"][0].as_py()


def test_timestamps_with_offsets_are_normalized_to_utc() -> None:
    query = compile_validation(load_contract("users"), USER_COLUMNS)
    row = {**GOOD_USER, "updated_at": "2026-01-03T04:05:06+02:00"}
    valid, _ = run_validation(new_connection(), query, _users_batch([row]))
    assert str(valid["updated_at"][0].as_py()) == "2026-01-03 02:05:06"


def test_json_lines_rules_and_non_objects() -> None:
    events = load_contract("user_events")
    query = compile_validation(events, jsonl=True)
    lines = [
        '{"event_id":"0a1b2c3d-0000-4000-8000-000000000001","user_id":5,"event_type":"purchase",'
        '"event_timestamp":"2026-01-05T10:11:12Z","properties":{"amount":12.5}}',
        '{"event_id":"0a1b2c3d-0000-4000-8000-000000000002","user_id":5,"event_type":"hover",'
        '"event_timestamp":"2026-01-05T10:11:12Z","properties":{"amount":-5}}',
        "[1,2]",
        '{"event_id": tru',
    ]
    batch = pa.table({"_source_line": pa.array([1, 2, 3, 4], pa.int64()), "_line_text": lines})
    valid, rejected = run_validation(new_connection(), query, batch)
    assert valid["event_id"].to_pylist() == ["0a1b2c3d-0000-4000-8000-000000000001"]
    assert str(valid["amount"][0].as_py()) == "12.50"
    by_line = dict(
        zip(rejected["_source_line"].to_pylist(), rejected["_reasons"].to_pylist(), strict=True)
    )
    assert {(r["column"], r["rule"]) for r in by_line[2]} == {
        ("event_type", f"not one of {', '.join(events.enum('event_type'))}"),
        ("amount", "below minimum 0"),
    }
    assert by_line[3][0]["rule"] == "line is not a JSON object"
    assert by_line[4][0]["rule"] == "line is not a JSON object"


RANGE = "outside the supported range 0001-01-01..9999-12-31"


def _reasons_by_line(rejected: pa.Table) -> dict[int, set[tuple[str, str]]]:
    return {
        line: {(r["column"], r["rule"]) for r in reasons}
        for line, reasons in zip(
            rejected["_source_line"].to_pylist(), rejected["_reasons"].to_pylist(), strict=True
        )
    }


TEMPORAL_REJECTS = [
    ("infinity", RANGE),
    ("-infinity", RANGE),
    ("Infinity", RANGE),
    ("10000-01-01", RANGE),
    ("10000-01-01 00:00:00", RANGE),
    ("-2026-01-05", RANGE),
    ("0000-12-31", RANGE),
    ("2026-01-05 BC", RANGE),
    ("2026-01-05 10:00:00 BC", RANGE),
    ("0044-03-15 10:00:00+00 BC", RANGE),
    ("epoch", "not a valid {type}"),
    ("now", "not a valid {type}"),
    ("today", "not a valid {type}"),
    ("tomorrow", "not a valid {type}"),
    ("allballs", "not a valid {type}"),
]


def test_dates_and_timestamps_outside_the_supported_range_or_keywords_are_rejected() -> None:
    """DuckDB's TRY_CAST takes infinity, BC dates, years past 9999 and 'epoch'; the lake's
    readers do not, and a keyword is not a point in time: every one is rejected, not kept."""
    query = compile_validation(load_contract("users"), USER_COLUMNS)
    rows = [{**GOOD_USER, "updated_at": value} for value, _ in TEMPORAL_REJECTS]
    rows += [{**GOOD_USER, "signup_date": value} for value, _ in TEMPORAL_REJECTS]
    valid, rejected = run_validation(new_connection(), query, _users_batch(rows))
    assert valid.num_rows == 0
    by_line = _reasons_by_line(rejected)
    n = len(TEMPORAL_REJECTS)
    for i, (value, rule) in enumerate(TEMPORAL_REJECTS):
        assert by_line[i + 1] == {("updated_at", rule.format(type="timestamp"))}, value
        assert by_line[n + i + 1] == {("signup_date", rule.format(type="date"))}, value


def test_the_range_of_a_timestamp_is_checked_after_its_conversion_to_utc() -> None:
    query = compile_validation(load_contract("users"), USER_COLUMNS)
    rows = [
        {**GOOD_USER, "updated_at": "9999-12-31T23:30:00-01:00"},  # 10000-01-01 00:30 UTC
        {**GOOD_USER, "updated_at": "0001-01-01T00:30:00+01:00"},  # 0000-12-31 23:30 UTC
        {**GOOD_USER, "updated_at": "9999-12-31T23:30:00+01:00"},  # 22:30 UTC: fits
        {**GOOD_USER, "updated_at": "9999-12-31 23:59:59.999999", "signup_date": "9999-12-31"},
        {**GOOD_USER, "updated_at": "0001-01-01 00:00:00", "signup_date": "0001-01-01"},
    ]
    valid, rejected = run_validation(new_connection(), query, _users_batch(rows))
    assert _reasons_by_line(rejected) == {1: {("updated_at", RANGE)}, 2: {("updated_at", RANGE)}}
    assert [str(v) for v in valid["updated_at"].to_pylist()] == [
        "9999-12-31 22:30:00",
        "9999-12-31 23:59:59.999999",
        "0001-01-01 00:00:00",
    ]
    assert [str(v) for v in valid["signup_date"].to_pylist()] == [
        "2026-01-02",
        "9999-12-31",
        "0001-01-01",
    ]


PRODUCT_COLUMNS = ("product_id", "name", "category", "unit_price", "updated_at")


def _products_batch(prices: list[str]) -> pa.Table:
    rows = [
        {
            "product_id": str(i),
            "name": "Pen",
            "category": "books",
            "unit_price": price,
            "updated_at": "2026-01-02 10:00:00",
        }
        for i, price in enumerate(prices, start=1)
    ]
    return _users_batch(rows)


def test_decimals_are_rejected_rather_than_rounded() -> None:
    """unit_price is decimal(12,2) with min 0 and max 100000."""
    query = compile_validation(load_contract("products"), PRODUCT_COLUMNS)
    prices = [
        "12.345",  # 1: a third fraction digit
        "-0.001",  # 2: rounds to 0.00, which passes min 0
        "100000.004",  # 3: rounds to 100000.00, which passes max 100000
        "12345678901",  # 4: eleven integer digits
        "1.23456e2",  # 5: 123.456
        "1e20",  # 6
        "1_000.00",  # 7: DuckDB reads digit separators
        "abc",  # 8
        "12.3400",  # 9: trailing zeros change nothing
        "1.5e2",  # 10: 150
        "+.5",  # 11
        " 7 ",  # 12
        "100000",  # 13
        "0",  # 14
        "-0.00",  # 15
    ]
    valid, rejected = run_validation(new_connection(), query, _products_batch(prices))
    fraction = ("unit_price", "more than 2 digits after the decimal point")
    integer = ("unit_price", "more than 10 digits before the decimal point")
    assert _reasons_by_line(rejected) == {
        1: {fraction},
        2: {fraction, ("unit_price", "below minimum 0")},
        3: {fraction, ("unit_price", "above maximum 100000")},
        4: {integer, ("unit_price", "above maximum 100000")},
        5: {fraction},
        6: {integer, ("unit_price", "above maximum 100000")},
        7: {("unit_price", "not a valid decimal(12,2)")},
        8: {("unit_price", "not a valid decimal(12,2)")},
    }
    assert [str(v) for v in valid["unit_price"].to_pylist()] == [
        "12.34",
        "150.00",
        "0.50",
        "7.00",
        "100000.00",
        "0.00",
        "0.00",
    ]


def test_decimal_scale_and_bounds_in_json_lines() -> None:
    """JSON numbers reach the validator as their text: 12.345 is not rounded to 12.35."""
    query = compile_validation(load_contract("user_events"), jsonl=True)
    event = (
        '{"event_id":"0a1b2c3d-0000-4000-8000-00000000000%d","user_id":5,'
        '"event_type":"purchase","event_timestamp":"%s","properties":{"amount":%s}}'
    )
    lines = [
        event % (1, "2026-01-05T10:11:12Z", "12.345"),
        event % (2, "2026-01-05T10:11:12Z", "-0.001"),
        event % (3, "infinity", "1"),
        event % (4, "10000-01-01T00:00:00Z", "1"),
        event % (5, "2026-01-05T10:11:12Z", "12.5"),
    ]
    batch = pa.table({"_source_line": pa.array(range(1, 6), pa.int64()), "_line_text": lines})
    valid, rejected = run_validation(new_connection(), query, batch)
    assert valid["_source_line"].to_pylist() == [5]
    fraction = ("amount", "more than 2 digits after the decimal point")
    assert _reasons_by_line(rejected) == {
        1: {fraction},
        2: {fraction, ("amount", "below minimum 0")},
        3: {("event_timestamp", RANGE)},
        4: {("event_timestamp", RANGE)},
    }


def test_decimals_in_exponent_notation_are_taken_exactly() -> None:
    """Parquet doubles print as 1e+10; DuckDB's own cast of a long mantissa with an exponent
    drops digits (0.000…1e38 reads as 0.0), so such text is rewritten before the cast."""
    products = load_contract("products")
    wide = Column(name="unit_price", type="decimal(38,1)", description="Wide.", required=True)
    columns = tuple(wide if c.name == "unit_price" else c for c in products.columns)
    query = compile_validation(products.model_copy(update={"columns": columns}), PRODUCT_COLUMNS)
    prices = [
        "0.000000000000000000000000000000000000001e38",  # 1: 0.1
        "1e+10",  # 2
        "12345678901234567890123456789012345.6e0",  # 3
        "-25E-1",  # 4: -2.5
        "0e999999999999",  # 5: zero
        "-2.5E-2",  # 6
        "1e37",  # 7: 38 integer digits
        "1e99999999999999999999999999999999999999999",  # 8
        "1e",  # 9
    ]
    valid, rejected = run_validation(new_connection(), query, _products_batch(prices))
    assert [str(v) for v in valid["unit_price"].to_pylist()] == [
        "0.1",
        "10000000000.0",
        "12345678901234567890123456789012345.6",
        "-2.5",
        "0.0",
    ]
    assert _reasons_by_line(rejected) == {
        6: {("unit_price", "more than 1 digit after the decimal point")},
        7: {("unit_price", "more than 37 digits before the decimal point")},
        8: {("unit_price", "not a valid decimal(38,1)")},
        9: {("unit_price", "not a valid decimal(38,1)")},
    }
