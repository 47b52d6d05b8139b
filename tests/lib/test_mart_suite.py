"""The marts' quality suites, compiled from the mart contracts, on a real DuckDB file."""

from __future__ import annotations

import duckdb
import pytest

from assets_project.lib.contracts import load_contract
from assets_project.lib.mart_contracts import MartContract, load_mart_contracts
from assets_project.lib.mart_suite import RuleResult, evaluate_all, rules_of


@pytest.fixture
def contract() -> MartContract:
    return load_mart_contracts()["fct_daily_revenue"]


def _results(
    connection: duckdb.DuckDBPyConnection, contract: MartContract
) -> dict[str, RuleResult]:
    return {r.rule.name: r for r in evaluate_all(connection, rules_of(contract))}


def _revenue_table(connection: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]]) -> None:
    connection.execute(
        "CREATE OR REPLACE TABLE fct_daily_revenue (revenue_date DATE, geographic_region VARCHAR,"
        " order_count BIGINT, units_sold BIGINT, revenue DECIMAL(18,2),"
        " last_built_at TIMESTAMP DEFAULT TIMESTAMP '2026-01-02 00:00:00')"
    )
    if rows:
        connection.executemany(
            "INSERT INTO fct_daily_revenue (revenue_date, geographic_region, order_count, "
            "units_sold, revenue) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def test_a_mart_that_keeps_every_promise_passes_every_rule(contract: MartContract) -> None:
    region = load_contract("users").enum("geographic_region")[0]
    with duckdb.connect() as connection:
        _revenue_table(
            connection,
            [("2026-01-01", region, 3, 5, "10.00"), ("2026-01-01", None, 1, 1, "2.50")],
        )
        results = _results(connection, contract)
    broken = {name: r.failing_rows for name, r in results.items() if not r.passed}
    # A NULL region is allowed (a customer not landed yet), but unusual: a warning.
    assert broken == {"geographic_region_not_null": 1}
    assert results["geographic_region_not_null"].rule.severity == "warning"
    assert results["row_count_in_bounds"].row_count == 2


def test_each_broken_promise_is_its_own_result_with_a_sample_of_the_rows(
    contract: MartContract,
) -> None:
    region = load_contract("users").enum("geographic_region")[0]
    with duckdb.connect() as connection:
        _revenue_table(
            connection,
            [
                ("2026-01-01", region, 3, 5, "10.00"),
                ("2026-01-01", region, 2, 2, "4.00"),  # the grain twice
                ("2026-01-02", "atlantis", 1, 1, "1.00"),  # not a region of the users contract
                ("2026-01-03", region, 0, 1, "-1.00"),  # no order, negative revenue
                (None, region, 1, 1, "1.00"),  # a required column NULL
            ],
        )
        results = _results(connection, contract)
    failing = {name: r.failing_rows for name, r in results.items() if not r.passed}
    assert failing == {
        "grain_unique": 1,
        "geographic_region_accepted_values": 1,
        "order_count_in_range": 1,
        "revenue_in_range": 1,
        "revenue_date_not_null": 1,
    }
    sample = results["geographic_region_accepted_values"].sample
    assert sample == [
        {
            "revenue_date": "2026-01-02",
            "geographic_region": "atlantis",
            "order_count": "1",
            "units_sold": "1",
            "revenue": "1.00",
            "last_built_at": "2026-01-02 00:00:00",
        }
    ]
    assert results["grain_unique"].sample[0]["rows_with_this_grain"] == "2"
    assert all(results[name].rule.severity == "error" for name in failing)


def test_an_empty_mart_breaks_its_row_count_and_nothing_else(contract: MartContract) -> None:
    with duckdb.connect() as connection:
        _revenue_table(connection, [])
        results = _results(connection, contract)
    assert [name for name, r in results.items() if not r.passed] == ["row_count_in_bounds"]
    assert results["row_count_in_bounds"].row_count == 0


def test_a_key_without_its_dimension_member_breaks_the_relationship() -> None:
    contract = load_mart_contracts()["fct_orders"]
    rules = [r for r in rules_of(contract) if r.name == "user_id_in_dim_users"]
    assert len(rules) == 1
    with duckdb.connect() as connection:
        connection.execute("CREATE TABLE dim_users (user_id BIGINT)")
        connection.execute("INSERT INTO dim_users VALUES (1)")
        connection.execute("CREATE TABLE fct_orders (order_id BIGINT, user_id BIGINT)")
        connection.execute("INSERT INTO fct_orders VALUES (10, 1), (11, 2), (12, NULL)")
        (result,) = evaluate_all(connection, rules)
    assert (result.passed, result.failing_rows) == (False, 1)
    assert result.sample == [{"order_id": "11", "user_id": "2"}]


def test_every_mart_has_a_suite_with_its_grain_and_row_count() -> None:
    for name, contract in load_mart_contracts().items():
        names = [r.name for r in rules_of(contract)]
        assert len(names) == len(set(names)), name
        assert "grain_unique" in names and "row_count_in_bounds" in names, name
