"""Contracts load, and a malformed one fails with the file and the field named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from assets_project.lib.contracts import CONTRACTS_DIR, ContractError, load_contract, source_names


def _write(tmp_path: Path, name: str, change: dict) -> Path:
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    data.update(change)
    (tmp_path / f"{name}.yml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_shipped_contracts_load() -> None:
    assert source_names() == ("orders", "products", "user_events", "users")
    for name in source_names():
        contract = load_contract(name)
        assert contract.primary_key and contract.freshness and contract.reject_rate


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"primary_key": ["nope"]}, "<root>", "primary_key names unknown column 'nope'"),
        ({"format": "xml"}, "format", "Input should be"),
        (
            {"freshness": {"warn_after_minutes": 10}},
            "freshness.fail_after_minutes",
            "Field required",
        ),
        ({"reject_rate": {"warn_above": 0.5, "fail_above": 0.1}}, "reject_rate", "fail_above"),
        ({"owner_team": "x"}, "owner_team", "Extra inputs are not permitted"),
    ],
)
def test_malformed_contract_names_file_and_field(
    tmp_path: Path, change: dict, field: str, message: str
) -> None:
    directory = _write(tmp_path, "users", change)
    with pytest.raises(ContractError) as error:
        load_contract("users", directory)
    text = str(error.value)
    assert str(directory / "users.yml") in text
    assert field in text and message in text


def test_bad_column_type_is_named(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    data["columns"][2]["type"] = "datetime"
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match=r"columns\.2\.type: .*unknown type 'datetime'"):
        load_contract("users", tmp_path)


def test_contract_name_must_match_file_name(tmp_path: Path) -> None:
    directory = _write(tmp_path, "customers", {})
    with pytest.raises(ContractError, match="differs from the file name"):
        load_contract("customers", directory)


def test_user_events_streams_from_its_kafka_topic() -> None:
    contract = load_contract("user_events")
    assert contract.channels == ("files", "kafka")
    assert contract.kafka is not None and contract.kafka.topic == "user-events"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"channels": ["files", "kafka"]}, "a kafka channel needs a kafka section"),
        (
            {"channels": ["kafka"], "kafka": {"topic": "user events"}},
            "not a valid Kafka topic name",
        ),
        ({"channels": ["kafka"], "kafka": {"topic": "t", "group": "x"}}, "Extra inputs"),
    ],
)
def test_kafka_section_is_validated(tmp_path: Path, change: dict, message: str) -> None:
    data = yaml.safe_load((CONTRACTS_DIR / "user_events.yml").read_text())
    data.pop("kafka")
    data.update(change)
    (tmp_path / "user_events.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match=message):
        load_contract("user_events", tmp_path)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        ("day", ["2024-02-29", "2025-12-31"]),
        ("month", ["2024-02-01", "2025-12-01"]),
        ("year", ["2024-01-01", "2025-01-01"]),
    ],
)
def test_partition_dates_follow_the_granularity(
    tmp_path: Path, granularity: str, expected: list[str]
) -> None:
    folder = _write(tmp_path, "users", {"partition_granularity": granularity})
    contract = load_contract("users", folder)
    values = pa.array([datetime(2024, 2, 29, 23, 59, 59), datetime(2025, 12, 31, 0, 0, 1)])
    dates = contract.partition_dates(values)
    assert dates.type == pa.date32()
    assert [d.isoformat() for d in dates.to_pylist()] == expected


def test_dimension_tables_are_partitioned_by_year() -> None:
    # Users' versions spread over years: per-day partitions made thousands of one-row files.
    assert load_contract("users").partition_granularity == "year"
    assert load_contract("products").partition_granularity == "year"
    assert load_contract("user_events").partition_granularity == "day"


def _with_email_regex(tmp_path: Path, pattern: str) -> Path:
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    assert data["columns"][1]["name"] == "email"
    data["columns"][1]["regex"] = pattern
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_a_regex_the_validation_engine_cannot_run_is_refused_at_load(tmp_path: Path) -> None:
    """Python's re takes a lookahead; DuckDB's RE2, which runs the rule, does not."""
    directory = _with_email_regex(tmp_path, "^(?=.*@)[^@]+@[^@]+$")
    with pytest.raises(ContractError) as error:
        load_contract("users", directory)
    text = str(error.value)
    assert str(directory / "users.yml") in text
    assert "columns.1" in text
    assert "regex of column email is not valid for RE2" in text
    assert "(?=" in text


def test_an_re2_pattern_that_python_cannot_compile_loads_and_runs(tmp_path: Path) -> None:
    from assets_project.lib.validation import compile_validation, new_connection, run_validation

    contract = load_contract("users", _with_email_regex(tmp_path, r"^\p{L}+@[[:alnum:].]+$"))
    columns = ("user_id", "email", "signup_date", "user_tier", "geographic_region", "updated_at")
    rows = [["1", "2"], ["\u00e9mile@b.co", "x1@b.co"], ["2026-01-01"] * 2, ["free"] * 2]
    rows += [["europe"] * 2, ["2026-01-02 10:00:00"] * 2]
    batch = pa.table(
        {"_source_line": pa.array([1, 2], pa.int64())} | dict(zip(columns, rows, strict=True))
    )
    query = compile_validation(contract, columns)
    valid, rejected = run_validation(new_connection(), query, batch)
    assert valid["email"].to_pylist() == ["\u00e9mile@b.co"]
    assert rejected["_source_line"].to_pylist() == [2]


@pytest.mark.parametrize("name", ["_source", "_source_line", "_reasons", "__original_0"])
def test_a_contract_column_may_not_take_a_reserved_name(tmp_path: Path, name: str) -> None:
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    data["columns"].append({"name": name, "type": "varchar", "description": "Clash."})
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match=f"{name!r} is reserved for the lake's own columns"):
        load_contract("users", tmp_path)


def test_orders_name_the_statuses_that_count_as_revenue() -> None:
    orders = load_contract("orders")
    revenue = orders.enum("status", "revenue")
    assert revenue and set(revenue) < set(orders.enum("status"))
    with pytest.raises(KeyError, match="no enum subset 'refund'"):
        orders.enum("status", "refund")
    with pytest.raises(KeyError, match="has no enum"):
        orders.enum("order_id")


def _with_tier_subsets(tmp_path: Path, **column: object) -> Path:
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    (tier,) = [c for c in data["columns"] if c["name"] == "user_tier"]
    tier.update(column)
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def test_enum_subsets_keep_their_order(tmp_path: Path) -> None:
    tiers = load_contract("users").enum("user_tier")
    paying = [tiers[-1], *tiers[1:-1]]
    contract = load_contract("users", _with_tier_subsets(tmp_path, enum_subsets={"paying": paying}))
    assert contract.enum("user_tier", "paying") == tuple(paying)
    assert contract.column("user_tier").enum_subsets == (("paying", tuple(paying)),)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"enum_subsets": {"odd": ["platinum"]}}, "must list distinct members of its enum"),
        ({"enum_subsets": {"odd": []}}, "must list distinct members of its enum"),
        ({"enum_subsets": {"Odd": None}}, "enum_subsets"),
        ({"enum_subsets": {"Odd": ["x"]}}, "not a lower-case SQL identifier"),
        ({"enum": None, "enum_subsets": {"odd": ["x"]}}, "need an enum"),
        ({"enum": ["a", "b", "a"]}, "lists a member twice"),
    ],
)
def test_malformed_enum_subsets_are_refused(tmp_path: Path, column: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        load_contract("users", _with_tier_subsets(tmp_path, **column))


def test_an_enum_subset_may_not_repeat_a_member(tmp_path: Path) -> None:
    first = load_contract("users").enum("user_tier")[0]
    directory = _with_tier_subsets(tmp_path, enum_subsets={"odd": [first, first]})
    with pytest.raises(ContractError, match="must list distinct members"):
        load_contract("users", directory)
