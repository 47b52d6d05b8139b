"""The mart assets carry their contract: column schema, owner, contract_version, freshness."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.lib.mart_contracts import MartContract, load_mart_contracts

MARTS = load_mart_contracts()


def _spec(name: str) -> dg.AssetSpec:
    return shop_dbt_models.specs_by_key[dg.AssetKey(name)]


def _columns(name: str) -> list[dg.TableColumn]:
    schema = _spec(name).metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    return list(schema.columns)


@pytest.mark.parametrize("contract", MARTS.values(), ids=list(MARTS))
def test_a_mart_asset_carries_its_contract(contract: MartContract) -> None:
    spec = _spec(contract.name)
    assert spec.owners == [contract.owner]
    assert spec.tags["contract_version"] == contract.version
    assert spec.freshness_policy == dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=contract.freshness.fail_after_minutes),
        warn_window=timedelta(minutes=contract.freshness.warn_after_minutes),
    )
    columns = _columns(contract.name)
    assert [(c.name, c.type, c.description) for c in columns] == [
        (c.name, c.data_type, c.description) for c in contract.columns
    ]
    nullable = {c.name: c.constraints.nullable for c in columns}
    assert nullable == {c.name: not c.not_null for c in contract.columns}


def test_column_rules_reach_the_schema() -> None:
    columns = {c.name: c for c in _columns("fct_orders")}
    assert columns["order_id"].constraints.unique
    assert "primary key" in columns["order_id"].constraints.other
    assert "references dim_users.user_id" in columns["user_id"].constraints.other
    assert ">= 1" in columns["quantity"].constraints.other


def test_models_without_a_contract_keep_dbt_defaults() -> None:
    spec = _spec("stg_orders")
    assert spec.freshness_policy is None
    assert "contract_version" not in spec.tags
    assert not spec.owners
