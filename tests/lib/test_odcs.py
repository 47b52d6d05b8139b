"""ODCS documents: every shipped contract is valid ODCS, and a broken one is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from open_data_contract_standard.model import CustomProperty, OpenDataContractStandard

from assets_project.cli.contracts import contract_files
from assets_project.lib.contracts import CONTRACTS_ROOT, contract_path
from assets_project.lib.odcs import (
    CUSTOM_PROPERTIES,
    ContractError,
    custom_properties,
    field_path,
    load_document,
    read_yaml,
    schema_problems,
)

CONTRACT_FILES = sorted(CONTRACTS_ROOT.glob("**/*.odcs.yaml"))


def test_the_glob_finds_the_source_contracts() -> None:
    names = {p.name for p in CONTRACT_FILES}
    assert {f"{n}.odcs.yaml" for n in ("orders", "products", "user_events", "users")} <= names
    assert contract_files() == CONTRACT_FILES


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: str(p.relative_to(CONTRACTS_ROOT)))
def test_every_contract_validates_against_the_official_json_schema(path: Path) -> None:
    raw = read_yaml(path)
    assert schema_problems(raw) == []
    document = load_document(path)
    assert isinstance(document, OpenDataContractStandard)
    assert (document.kind, document.apiVersion) == ("DataContract", "v3.2.0")
    assert document.name == path.name.removesuffix(".odcs.yaml")


def test_the_schema_check_can_fail() -> None:
    """The validator really judges: a document without its required fields is refused."""
    problems = schema_problems({"kind": "DataContract", "apiVersion": "v9"})
    assert "<root>: 'version' is a required property" in problems
    assert "<root>: 'id' is a required property" in problems
    assert any(p.startswith("apiVersion: 'v9' is not one of") for p in problems)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.update(kind="DataProduct"), "kind", "is not one of ['DataContract']"),
        (lambda d: d.pop("id"), "<root>", "'id' is a required property"),
        (
            lambda d: d["schema"][0]["properties"][0].update(required="yes"),
            "schema[0].properties[0].required",
            "'yes' is not of type 'boolean'",
        ),
        (
            lambda d: d["servers"][0].update(type="ftp"),
            "servers[0].type",
            "'ftp' is not one of",
        ),
    ],
)
def test_a_malformed_document_names_file_and_field(
    tmp_path: Path, change, field: str, message: str
) -> None:
    doc = read_yaml(contract_path("users"))
    change(doc)
    path = tmp_path / "users.odcs.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ContractError) as error:
        load_document(path)
    text = str(error.value)
    assert text.startswith(f"contract {path}: ")
    assert f"{field}: " in text and message in text


def test_unreadable_documents_are_contract_errors(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="cannot be read"):
        load_document(tmp_path / "missing.odcs.yaml")
    (tmp_path / "list.odcs.yaml").write_text("- a\n- b\n")
    with pytest.raises(ContractError, match="top level must be a mapping"):
        load_document(tmp_path / "list.odcs.yaml")
    (tmp_path / "bad.odcs.yaml").write_text("a: [\n")
    with pytest.raises(ContractError, match="cannot be read"):
        load_document(tmp_path / "bad.odcs.yaml")


def test_dates_stay_text_as_json_has_them(tmp_path: Path) -> None:
    """YAML would read 2026-01-02 as a date, which no JSON Schema type accepts."""
    (tmp_path / "d.yaml").write_text("examples: [2026-01-02, 2026-01-02 10:00:00]\n")
    assert read_yaml(tmp_path / "d.yaml") == {"examples": ["2026-01-02", "2026-01-02 10:00:00"]}


def test_custom_properties_become_a_mapping_and_unknown_names_are_refused() -> None:
    entries = [CustomProperty(property="jsonPath", value="$.a"), CustomProperty(property="x")]
    assert custom_properties(entries[:1], "p", ("jsonPath",)) == {"jsonPath": "$.a"}
    with pytest.raises(ValueError, match=r"^p\[1\]\.property: custom property 'x' is unknown"):
        custom_properties(entries, "p", ("jsonPath",))
    with pytest.raises(ValueError, match=r"^p\[0\]\.property: .*'jsonPath' is not allowed here"):
        custom_properties(entries[:1], "p", ("topic",))
    with pytest.raises(ValueError, match="is given twice"):
        custom_properties([entries[0], entries[0]], "p", ("jsonPath",))


def _custom_names(node: object) -> set[str]:
    """The ``property`` of every ``customProperties`` entry anywhere in ``node``."""
    if isinstance(node, list):
        return set().union(*map(_custom_names, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    names = {entry["property"] for entry in node.get("customProperties", [])}
    return names.union(*map(_custom_names, node.values()))


def test_every_custom_property_in_the_contracts_is_documented() -> None:
    used = set().union(*(_custom_names(read_yaml(path)) for path in CONTRACT_FILES))
    assert {"rejectRate", "jsonPath", "enumSubsets", "topic"} <= used
    assert used <= set(CUSTOM_PROPERTIES)


def test_field_path_reads_like_the_document() -> None:
    assert field_path(("schema", 0, "properties", 2, "name")) == "schema[0].properties[2].name"
    assert field_path(()) == "<root>"
