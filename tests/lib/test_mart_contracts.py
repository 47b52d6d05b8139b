"""The mart contracts: valid ODCS v3, one per mart, and a typed view that refuses bad ones."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from assets_project.lib.contracts import ContractError, load_contract
from assets_project.lib.mart_contracts import (
    MART_CONTRACTS_DIR,
    MART_SUFFIX,
    load_mart_contract,
    load_mart_contracts,
)

MARTS_SQL = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "marts"
PATHS = sorted(MART_CONTRACTS_DIR.glob(f"*{MART_SUFFIX}"))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_every_mart_contract_validates_against_the_odcs_json_schema(path: Path) -> None:
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    )
    jsonschema.Draft201909Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_every_mart_has_a_contract_and_every_contract_a_mart() -> None:
    assert set(load_mart_contracts()) == {p.stem for p in MARTS_SQL.glob("*.sql")}


def test_the_typed_view_resolves_enums_from_the_source_contracts() -> None:
    marts = load_mart_contracts()
    status = marts["fct_orders"].column("status").accepted_values
    assert status is not None and (status.source, status.column) == ("orders", "status")
    assert status.values == load_contract("orders").enum("status")
    assert marts["fct_orders"].column("geographic_region").filled_warning
    assert not marts["fct_orders"].column("geographic_region").not_null
    (to_users,) = marts["fct_orders"].column("user_id").relationships
    assert (to_users.to_table, to_users.to_column, to_users.severity) == (
        "dim_users",
        "user_id",
        "warning",
    )
    activity = marts["fct_user_daily_activity"]
    assert activity.primary_key == activity.grain == ("user_id", "activity_date")
    revenue = marts["fct_daily_revenue"]
    assert revenue.primary_key == () and revenue.grain == ("revenue_date", "geographic_region")


def _edited(tmp_path: Path, name: str, edit: Any) -> Path:
    """A copy of the mart contracts with ``edit`` applied to ``name``'s document."""
    directory = tmp_path / "marts"
    shutil.copytree(MART_CONTRACTS_DIR, directory)
    path = directory / f"{name}{MART_SUFFIX}"
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _prop(document: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in document["schema"][0]["properties"] if p["name"] == name]
    return found


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        pytest.param(
            lambda d: _prop(d, "quantity").update(physicalType="int128"),
            "schema[0].properties[3].physicalType",
            id="unknown-type",
        ),
        pytest.param(
            lambda d: _prop(d, "quantity").update(logicalType="string"),
            "schema[0].properties[3].logicalType",
            id="logical-type-mismatch",
        ),
        pytest.param(
            lambda d: _prop(d, "quantity").update(logicalType="int"),
            "schema[0].properties[3].logicalType: 'int' is not one of",
            id="json-schema",
        ),
        pytest.param(
            lambda d: _prop(d, "status")["customProperties"][0].update(value="orders.state"),
            "schema[0].properties[6].customProperties: 'orders.state' names no source",
            id="unknown-enum-column",
        ),
        pytest.param(
            lambda d: _prop(d, "status")["customProperties"][0].update(property="enum_from"),
            "schema[0].properties[6].customProperties[0].property",
            id="unknown-custom-property",
        ),
        pytest.param(
            lambda d: _prop(d, "user_id")["relationships"][0].update(to="dim_users.id"),
            "schema[0].properties[1].relationships[0].to",
            id="relationship-to-unknown-column",
        ),
        pytest.param(
            lambda d: _prop(d, "user_id")["relationships"][0]["customProperties"][0].update(
                value="fatal"
            ),
            "schema[0].properties[1].relationships[0].customProperties: severity 'fatal'",
            id="unknown-severity",
        ),
        pytest.param(
            lambda d: _prop(d, "order_id").update(required=False),
            "schema[0].properties[0].required",
            id="nullable-primary-key",
        ),
        pytest.param(
            lambda d: d["schema"][0].update(quality=d["schema"][0]["quality"][:1]),
            "schema[0].quality",
            id="no-grain",
        ),
        pytest.param(lambda d: d.update(slaProperties=[]), "slaProperties", id="no-freshness"),
    ],
)
def test_a_malformed_mart_contract_fails_naming_file_and_field(
    tmp_path: Path, edit: Any, field: str
) -> None:
    path = _edited(tmp_path, "fct_orders", edit)
    with pytest.raises(ContractError) as raised:
        load_mart_contract(path)
    assert str(raised.value).startswith(f"contract {path}: {field}"), str(raised.value)
