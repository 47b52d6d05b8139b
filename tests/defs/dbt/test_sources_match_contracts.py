"""The dbt sources YAML never drifts from the contracts (the single source of truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from assets_project.lib.contracts import load_contract, source_names
from assets_project.lib.lake import METADATA_DESCRIPTIONS

SOURCES_YML = Path(__file__).resolve().parents[3] / "dbt_project/models/staging/_raw__sources.yml"


def _tables() -> dict[str, dict[str, Any]]:
    (raw,) = [s for s in yaml.safe_load(SOURCES_YML.read_text())["sources"] if s["name"] == "raw"]
    return {t["name"]: t for t in raw["tables"]}


def test_every_contract_is_a_dbt_source_and_nothing_else() -> None:
    assert set(_tables()) == set(source_names())


@pytest.mark.parametrize("source", source_names())
def test_columns_and_descriptions_match(source: str) -> None:
    contract = load_contract(source)
    table = _tables()[source]
    assert table["description"].strip() == contract.description
    assert table["meta"]["delta_table_path"].endswith(f"/raw/{source}")
    declared = {c["name"]: c.get("description", "").strip() for c in table["columns"]}
    expected = {c.name: c.description for c in contract.columns} | METADATA_DESCRIPTIONS
    assert declared.keys() == expected.keys(), "columns differ from the contract"
    for name, description in expected.items():
        assert declared[name] == description, f"{source}.{name}: description differs"
