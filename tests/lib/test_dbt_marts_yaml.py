"""The marts' dbt model properties are generated from the mart contracts, and current."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from assets_project.lib.dbt_marts_yaml import MARTS_YAML_PATH, generated_files
from assets_project.lib.lake import REPO_ROOT
from assets_project.lib.mart_contracts import MART_CONTRACTS_DIR, MART_SUFFIX, load_mart_contracts


def test_the_committed_marts_yaml_is_what_the_contracts_give() -> None:
    """Fails on any drift: run `python -m assets_project contracts generate`."""
    committed = (REPO_ROOT / MARTS_YAML_PATH).read_text(encoding="utf-8")
    assert committed == generated_files()[MARTS_YAML_PATH]


def _models(text: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in yaml.safe_load(text)["models"]}


def _tests(node: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for test in node.get("data_tests", []):
        name, body = (test, {}) if isinstance(test, str) else next(iter(test.items()))
        found[name] = body
    return found


def test_every_mart_is_an_enforced_contract_with_the_contract_facts() -> None:
    models = _models(generated_files()[MARTS_YAML_PATH])
    contracts = load_mart_contracts()
    assert set(models) == set(contracts)
    for name, contract in contracts.items():
        model = models[name]
        assert model["config"]["contract"] == {"enforced": True}
        assert model["description"] == contract.description
        columns = {c["name"]: c for c in model["columns"]}
        assert list(columns) == [c.name for c in contract.columns]
        for column in contract.columns:
            written = columns[column.name]
            assert written["data_type"] == column.data_type
            assert written["description"] == column.description
            not_null = {"type": "not_null"} in written.get("constraints", [])
            assert not_null == column.not_null, f"{name}.{column.name}"
        keys = [c for c in model.get("constraints", []) if c["type"] == "primary_key"]
        assert [k["columns"] for k in keys] == ([list(contract.primary_key)] if keys else [])
        assert bool(keys) == bool(contract.primary_key)


def test_generic_tests_carry_what_constraints_do_not() -> None:
    models = _models(generated_files()[MARTS_YAML_PATH])
    orders = {c["name"]: _tests(c) for c in models["fct_orders"]["columns"]}
    assert orders["status"]["accepted_values"]["arguments"]["values"] == (
        "{{ contract_values('orders', 'status') }}"
    )
    assert orders["user_id"]["relationships"] == {
        "config": {"severity": "warn"},
        "arguments": {"to": "ref('dim_users')", "field": "user_id"},
    }
    assert orders["quantity"]["accepted_range"] == {"arguments": {"min_value": 1}}
    assert orders["geographic_region"]["not_null"] == {"config": {"severity": "warn"}}
    assert "not_null" not in orders["order_id"]  # the constraint covers it
    revenue = _tests(models["fct_daily_revenue"])
    assert revenue["unique_combination_of_columns"]["arguments"] == {
        "combination_of_columns": ["revenue_date", "geographic_region"]
    }
    assert revenue["accepted_range"] == {
        "config": {"severity": "warn"},
        "arguments": {"expression": "count(*)", "min_value": 1},
    }
    assert "unique_combination_of_columns" not in _tests(models["fct_orders"])  # primary key


def test_a_changed_contract_changes_the_generated_yaml(tmp_path: Path) -> None:
    directory = tmp_path / "marts"
    shutil.copytree(MART_CONTRACTS_DIR, directory)
    path = directory / f"dim_products{MART_SUFFIX}"
    document = yaml.safe_load(path.read_text())
    (price,) = [p for p in document["schema"][0]["properties"] if p["name"] == "unit_price"]
    price["logicalTypeOptions"]["maximum"] = 100000
    price["description"] = 'List price: EUR, "quoted" # not a comment'
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    text = generated_files(directory)[MARTS_YAML_PATH]
    assert text != generated_files()[MARTS_YAML_PATH]
    columns = {c["name"]: c for c in _models(text)["dim_products"]["columns"]}
    assert columns["unit_price"]["description"] == price["description"]
    assert _tests(columns["unit_price"])["accepted_range"] == {
        "arguments": {"min_value": 0, "max_value": 100000}
    }
