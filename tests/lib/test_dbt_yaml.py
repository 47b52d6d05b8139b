"""The dbt files generated from the contracts: faithful YAML, and drift is seen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from assets_project.lib.contracts import CONTRACTS_DIR, load_contract
from assets_project.lib.dbt_yaml import (
    DBT_PROJECT_DIR,
    DOCS_PATH,
    LOADED_AT_FIELD,
    MACRO_PATH,
    SOURCES_PATH,
    generated_files,
    render_sources,
)
from assets_project.lib.lake import METADATA_DESCRIPTIONS
from tests.contract_documents import document, prop, set_custom, table, write

AWKWARD = (
    "Short.",
    "A colon: then text, a # hash and 'quotes' and \"double quotes\".",
    "- starts like a list item",
    "{looks: like a mapping}",
    "A long description that goes on and on " * 5 + "end.",
    "Two  spaces inside keep both  of them.",
    "yes",
)


@pytest.mark.parametrize("description", AWKWARD)
def test_sources_yaml_reads_back_every_description_exactly(
    tmp_path: Path, description: str
) -> None:
    doc = document("users")
    table(doc)["description"] = description
    prop(doc, "email")["description"] = description
    text = render_sources([load_contract("users", write(tmp_path, "users", doc))])
    assert all(len(line) <= 100 or '"' in line for line in text.splitlines())
    (raw,) = yaml.safe_load(text)["sources"]
    (entry,) = raw["tables"]
    assert entry["description"] == description
    columns = {c["name"]: c["description"] for c in entry["columns"]}
    assert columns["email"] == description
    assert list(columns) == [p["name"] for p in table(doc)["properties"]] + list(
        METADATA_DESCRIPTIONS
    )


def test_sources_yaml_carries_the_freshness_sla(tmp_path: Path) -> None:
    """``slaProperties`` freshness (here in hours) becomes dbt's source freshness in minutes."""
    doc = document("users")
    (sla,) = doc["slaProperties"]
    sla.update(value=2, valueExt=5, unit="h")
    text = render_sources([load_contract("users", write(tmp_path, "users", doc))])
    (entry,) = yaml.safe_load(text)["sources"][0]["tables"]
    assert entry["config"] == {
        "loaded_at_field": LOADED_AT_FIELD,
        "freshness": {
            "warn_after": {"count": 120, "period": "minute"},
            "error_after": {"count": 300, "period": "minute"},
        },
    }
    assert LOADED_AT_FIELD in METADATA_DESCRIPTIONS


def test_a_changed_enum_changes_the_macro_only(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    committed = {
        relative: (DBT_PROJECT_DIR / relative).read_text()
        for relative in (SOURCES_PATH, MACRO_PATH, DOCS_PATH)
    }
    assert generated_files(contracts) == committed

    orders = document("orders")
    status = prop(orders, "status")
    status["enum"].append({"value": "on_hold"})
    set_custom(status, "enumSubsets", {"open": [status["enum"][0]["value"], "on_hold"]})
    write(contracts, "orders", orders)
    files = generated_files(contracts)
    assert files[SOURCES_PATH] == committed[SOURCES_PATH]
    assert files[DOCS_PATH] == committed[DOCS_PATH]
    assert "'on_hold']," in files[MACRO_PATH] and "'open': [" in files[MACRO_PATH]


def test_a_changed_description_changes_its_docs_block(tmp_path: Path) -> None:
    """The staging models show a contract's words through the generated docs blocks."""
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    orders = document("orders")
    prop(orders, "quantity")["description"] = "Units ordered, never zero."
    write(contracts, "orders", orders)
    docs = generated_files(contracts)[DOCS_PATH]
    assert "{% docs raw__orders__quantity %}\nUnits ordered, never zero.\n{% enddocs %}" in docs
