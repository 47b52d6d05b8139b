"""Contracts load, and a malformed one fails with the file and the field named."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from assets_project.lib.contracts import (
    ContractError,
    contract_path,
    load_contract,
    source_names,
)
from tests.contract_documents import document, prop, server, set_custom, table, write

Doc = dict[str, Any]


def _users(tmp_path: Path, change: Callable[[Doc], object], name: str = "users") -> Path:
    doc = document("users")
    change(doc)
    return write(tmp_path, name, doc)


def test_shipped_contracts_load() -> None:
    assert source_names() == ("orders", "products", "user_events", "users")
    for name in source_names():
        contract = load_contract(name)
        assert contract.primary_key and contract.freshness and contract.reject_rate


def test_the_typed_view_keeps_the_facts_of_the_contracts() -> None:
    """A few facts, written out: the ODCS documents say what the former contracts said."""
    orders = load_contract("orders")
    assert (orders.version, orders.semver, orders.owner) == (
        1,
        "1.0.0",
        "checkout-team@shop.example",
    )
    assert (orders.primary_key, orders.partition_by, orders.update_time) == (
        ("order_id",),
        "created_at",
        "updated_at",
    )
    assert orders.channels == ("files", "postgres") and orders.format == "csv"
    assert orders.postgres is not None
    assert (orders.postgres.schema_name, orders.postgres.table) == ("public", "orders")
    assert (orders.freshness.warn_after_minutes, orders.freshness.fail_after_minutes) == (60, 240)
    assert (orders.reject_rate.warn_above, orders.reject_rate.fail_above) == (0.05, 0.5)
    assert orders.expected_volume.min_rows == 1 and orders.expected_volume.max_rows is None
    assert orders.maintenance.z_order_by == () and orders.maintenance.target_file_size is None
    assert load_contract("user_events").maintenance.z_order_by == ("user_id",)
    quantity = orders.column("quantity")
    assert (quantity.type, quantity.min, quantity.max, quantity.required) == (
        "integer",
        1,
        1000,
        True,
    )
    assert orders.column("unit_price").type == "decimal(12,2)"
    email = load_contract("users").column("email")
    assert (email.unique, email.max_length) == (True, 254)
    assert email.regex == r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    amount = load_contract("user_events").column("amount")
    assert (amount.path, amount.required, amount.max) == ("$.properties.amount", False, 100000)
    assert load_contract("user_events").format == "jsonl"
    assert load_contract("users").freshness.warn_after_minutes == 1560


def _set_sla(doc: Doc, **fields: object) -> None:
    (sla,) = doc["slaProperties"]
    sla.update(fields)
    for key in [k for k, v in fields.items() if v is None]:
        del sla[key]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda d: prop(d, "user_id").pop("primaryKey"),
            "schema[0].properties",
            "no property has primaryKey: true",
        ),
        (
            lambda d: prop(d, "user_id").pop("required"),
            "<root>",
            "primary key column 'user_id' must be required",
        ),
        (lambda d: server(d, "local").update(format="xml"), "servers[0].format", "Input should be"),
        (lambda d: _set_sla(d, valueExt=None), "slaProperties[0].valueExt", "Field required"),
        (
            lambda d: set_custom(table(d), "rejectRate", {"warnAbove": 0.5, "failAbove": 0.1}),
            "customProperties.rejectRate",
            "fail_above",
        ),
        (lambda d: d.update(owner_team="x"), "<root>", "'owner_team' was unexpected"),
        (
            lambda d: set_custom(table(d), "maintenance", {"zOrderBy": ["user_idd"]}),
            "<root>",
            "maintenance.z_order_by names unknown column 'user_idd'",
        ),
        (
            lambda d: set_custom(table(d), "maintenance", {"targetFileSize": 10}),
            "customProperties.maintenance.target_file_size",
            "greater than or equal to 1048576",
        ),
        (
            lambda d: set_custom(table(d), "rejectRate", {"warnAbove": 0.1, "failabove": 0.5}),
            "customProperties.rejectRate.failabove",
            "Extra inputs are not permitted",
        ),
        (
            lambda d: prop(d, "email").update(physicalType=7),
            "schema[0].properties[1].physicalType",
            "7 is not of type 'string'",
        ),
        (
            lambda d: set_custom(prop(d, "email"), "maxLen", 3),
            "schema[0].properties[1].customProperties[0].property",
            "custom property 'maxLen' is unknown",
        ),
        (
            lambda d: prop(d, "signup_date").update(logicalType="timestamp"),
            "schema[0].properties[2].logicalType",
            "must be date for date",
        ),
        (
            lambda d: prop(d, "email")["logicalTypeOptions"].update(pattern="^a"),
            "schema[0].properties[1].logicalTypeOptions.pattern",
            "a regex is a quality rule",
        ),
        (
            lambda d: _set_sla(d, unit="weeks"),
            "slaProperties[0].unit",
            "use one of",
        ),
    ],
)
def test_malformed_contract_names_file_and_field(
    tmp_path: Path, change: Callable[[Doc], object], field: str, message: str
) -> None:
    directory = _users(tmp_path, change)
    with pytest.raises(ContractError) as error:
        load_contract("users", directory)
    text = str(error.value)
    assert str(contract_path("users", directory)) in text
    assert field in text and message in text


def test_bad_column_type_is_named(tmp_path: Path) -> None:
    directory = _users(tmp_path, lambda d: prop(d, "signup_date").update(physicalType="datetime"))
    with pytest.raises(
        ContractError,
        match=r"schema\[0\]\.properties\[2\]\.physicalType: .*unknown type 'datetime'",
    ):
        load_contract("users", directory)


def test_a_document_outside_the_odcs_schema_fails_with_the_schema_path(tmp_path: Path) -> None:
    """The official JSON Schema judges first: here an enum entry without its ``value``."""
    directory = _users(tmp_path, lambda d: prop(d, "user_tier")["enum"].append({"label": "x"}))
    with pytest.raises(ContractError) as error:
        load_contract("users", directory)
    assert "schema[0].properties[3].enum[4]: 'value' is a required property" in str(error.value)


def test_contract_name_must_match_file_name(tmp_path: Path) -> None:
    directory = _users(tmp_path, lambda d: None, name="customers")
    with pytest.raises(ContractError, match="differs from the file name"):
        load_contract("customers", directory)


def test_user_events_streams_from_its_kafka_topic() -> None:
    contract = load_contract("user_events")
    assert contract.channels == ("files", "kafka")
    assert contract.kafka is not None and contract.kafka.topic == "user-events"


def _kafka(doc: Doc, **fields: object) -> None:
    kafka = server(doc, "kafka")
    kafka.update(fields)
    for key in [k for k, v in fields.items() if v is None]:
        del kafka[key]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: server(d, "local").update(format="csv"),
            "a kafka channel needs a kafka section",
        ),
        (
            lambda d: set_custom(server(d, "kafka"), "topic", "user events"),
            "not a valid Kafka topic name",
        ),
        (
            lambda d: set_custom(server(d, "kafka"), "topic", None),
            r"servers\[1\]\.customProperties\.topic: Field required",
        ),
        (
            lambda d: set_custom(server(d, "kafka"), "table", "t"),
            r"servers\[1\]\.customProperties\[1\]\.property: .*'table' is not allowed here",
        ),
        (lambda d: _kafka(d, host=None), r"servers\[1\]: 'host' is a required property"),
    ],
)
def test_kafka_section_is_validated(
    tmp_path: Path, change: Callable[[Doc], object], message: str
) -> None:
    doc = document("user_events")
    change(doc)
    with pytest.raises(ContractError, match=message):
        load_contract("user_events", write(tmp_path, "user_events", doc))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["servers"].pop(),
            r"servers: one server with format delta and path \$\{LAKE_URI\}/raw/users",
        ),
        (
            lambda d: server(d, "local").update(path="/srv/drops/users"),
            r"servers\[0\]\.path: must be \$\{DATA_DIR\}/landing/users",
        ),
        (lambda d: d["servers"].append(dict(d["servers"][0])), "a second files server"),
        (
            lambda d: d["servers"].insert(0, {"server": "x", "type": "duckdb", "database": "w.db"}),
            r"servers\[0\]\.type: 'duckdb': a source is read from",
        ),
    ],
)
def test_servers_are_validated(
    tmp_path: Path, change: Callable[[Doc], object], message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        load_contract("users", _users(tmp_path, change))


def test_orders_are_extracted_from_their_postgres_table() -> None:
    orders = load_contract("orders")
    assert orders.postgres is not None and orders.postgres.table == "orders"


def test_a_composite_primary_key_follows_its_positions(tmp_path: Path) -> None:
    def key(doc: Doc) -> None:
        prop(doc, "user_id").update(primaryKeyPosition=2)
        prop(doc, "updated_at").update(primaryKey=True, primaryKeyPosition=1)

    assert load_contract("users", _users(tmp_path, key)).primary_key == ("updated_at", "user_id")
    (tmp_path / "unordered").mkdir()
    directory = _users(
        tmp_path / "unordered", lambda d: prop(d, "updated_at").update(primaryKey=True)
    )
    with pytest.raises(ContractError, match="give its position"):
        load_contract("users", directory)


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
    folder = _users(
        tmp_path, lambda d: set_custom(prop(d, "updated_at"), "partitionGranularity", granularity)
    )
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
    doc = document("users")
    (rule,) = prop(doc, "email")["quality"]
    rule["arguments"]["pattern"] = pattern
    return write(tmp_path, "users", doc)


def test_a_regex_the_validation_engine_cannot_run_is_refused_at_load(tmp_path: Path) -> None:
    """Python's re takes a lookahead; DuckDB's RE2, which runs the rule, does not."""
    directory = _with_email_regex(tmp_path, "^(?=.*@)[^@]+@[^@]+$")
    with pytest.raises(ContractError) as error:
        load_contract("users", directory)
    text = str(error.value)
    assert str(contract_path("users", directory)) in text
    assert "schema[0].properties[1]: " in text
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
    clash = {
        "name": name,
        "logicalType": "string",
        "physicalType": "varchar",
        "description": "Clash.",
    }
    directory = _users(tmp_path, lambda d: table(d)["properties"].append(clash))
    with pytest.raises(ContractError, match=f"{name!r} is reserved for the lake's own columns"):
        load_contract("users", directory)


def test_orders_name_the_statuses_that_count_as_revenue() -> None:
    orders = load_contract("orders")
    revenue = orders.enum("status", "revenue")
    assert revenue and set(revenue) < set(orders.enum("status"))
    with pytest.raises(KeyError, match="no enum subset 'refund'"):
        orders.enum("status", "refund")
    with pytest.raises(KeyError, match="has no enum"):
        orders.enum("order_id")


def _with_tier_subsets(tmp_path: Path, **column: object) -> Path:
    doc = document("users")
    tier = prop(doc, "user_tier")
    if "enum" in column:
        enum = column.pop("enum")
        if enum is None:
            del tier["enum"]
        else:
            tier["enum"] = [{"value": value} for value in enum]  # type: ignore[attr-defined]
    set_custom(tier, "enumSubsets", column.pop("enum_subsets", None))
    return write(tmp_path, "users", doc)


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
        ({"enum": ["a", "b", "a"]}, "has non-unique elements"),
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
