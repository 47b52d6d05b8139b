from __future__ import annotations

import pyarrow as pa

from assets_project.lib.contracts import load_contract
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
    query = compile_validation(load_contract("users"), (*USER_COLUMNS, "unexpected"))
    batch = _users_batch([{**bad, "unexpected": "kept"}])
    valid, rejected = run_validation(new_connection(), query, batch)
    assert valid.num_rows == 0
    reasons = {(r["column"], r["rule"], r["value"]) for r in rejected["_reasons"].to_pylist()[0]}
    assert reasons == {
        ("user_id", "not a valid bigint", "2.5"),
        ("email", "required value is missing", None),
        ("user_tier", "not one of free, basic, premium, enterprise", "platinum"),
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
    query = compile_validation(load_contract("user_events"), jsonl=True)
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
        ("event_type", "not one of page_view, click, purchase, signup, logout"),
        ("amount", "below minimum 0"),
    }
    assert by_line[3][0]["rule"] == "line is not a JSON object"
    assert by_line[4][0]["rule"] == "line is not a JSON object"
