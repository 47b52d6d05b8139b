"""dbt never drifts from the contracts (the single source of truth): the generated sources YAML
and enum macro are current, every accepted_values list is a contract enum, and no contract enum
is written out by hand anywhere else in the repository."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from assets_project.cli.contracts import stale
from assets_project.defs.dbt.project import dbt_project
from assets_project.lib.contracts import load_contract, source_names
from assets_project.lib.dbt_yaml import LOADED_AT_FIELD, MACRO_PATH, SOURCES_PATH, doc_name
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


@pytest.mark.parametrize("source", source_names())
def test_freshness_is_the_contract_sla(source: str) -> None:
    freshness = load_contract(source).freshness
    config = _tables()[source]["config"]
    assert config["loaded_at_field"] == LOADED_AT_FIELD
    assert config["freshness"] == {
        "warn_after": {"count": freshness.warn_after_minutes, "period": "minute"},
        "error_after": {"count": freshness.fail_after_minutes, "period": "minute"},
    }


# --------------------------------------------------------------------- generated files and enums

REPO = Path(__file__).resolve().parents[3]
MODEL_YAMLS = sorted((REPO / "dbt_project/models").rglob("_*.yml"))
CONTRACT_VALUES = re.compile(
    r"^\{\{ contract_values\('(?P<source>\w+)', '(?P<column>\w+)'(?:, '(?P<subset>\w+)')?\) \}\}$"
)


def _enums() -> dict[tuple[str, str], tuple[str, ...]]:
    """Every contract enum, by (source, column)."""
    return {
        (source, column.name): column.enum
        for source in source_names()
        for column in load_contract(source).columns
        if column.enum is not None
    }


def test_generated_dbt_files_match_the_contracts() -> None:
    """_raw__sources.yml and macros/contract_values.sql are what the contracts give today."""
    assert stale() == [], "run `python -m assets_project contracts generate` (make dbt-yaml)"


def test_contract_values_macro_holds_every_enum_and_subset() -> None:
    macro = (REPO / "dbt_project" / MACRO_PATH).read_text()
    for (source, column), enum in _enums().items():
        listed = "[" + ", ".join(f"'{member}'" for member in enum) + "]"
        assert f"'enum': {listed}" in macro, f"{source}.{column}"
        for subset, members in load_contract(source).column(column).enum_subsets:
            listed = "[" + ", ".join(f"'{member}'" for member in members) + "]"
            assert f"'{subset}': {listed}" in macro, f"{source}.{column} {subset}"


def _accepted_values() -> list[tuple[str, str, object]]:
    """(model, column, values argument) of every accepted_values test in the model YAMLs."""
    found = []
    for path in MODEL_YAMLS:
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for column in model.get("columns", []):
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        values = test["accepted_values"]["arguments"]["values"]
                        found.append((model["name"], column["name"], values))
    return found


def test_accepted_values_come_from_contract_enums() -> None:
    """No accepted_values list is written out: each names a contract enum of its column."""
    enums = _enums()
    accepted = _accepted_values()
    assert accepted, "no accepted_values test found"
    for model, column, values in accepted:
        match = CONTRACT_VALUES.match(values) if isinstance(values, str) else None
        assert match, f"{model}.{column}: values {values!r} are not contract_values(...)"
        assert (match["source"], match["column"]) in enums, f"{model}.{column}: no such enum"
        assert match["column"] == column, f"{model}.{column} checked against another column"
        if match["subset"]:
            load_contract(match["source"]).column(column).enum_subset(match["subset"])


@pytest.mark.parametrize("source", source_names())
def test_staging_columns_keep_the_contract_descriptions(source: str) -> None:
    """stg_<source> describes each column it takes over from the contract with the contract's
    words: a reference to the generated docs block (never a copy), which dbt renders into the
    manifest (and so into Dagster's column schema) as the contract's description."""
    (model,) = [
        m
        for m in yaml.safe_load(
            (REPO / "dbt_project/models/staging/_staging__models.yml").read_text()
        )["models"]
        if m["name"] == f"stg_{source}"
    ]
    contract = {c.name: c.description for c in load_contract(source).columns}
    shared = [c for c in model["columns"] if c["name"] in contract]
    assert shared, f"stg_{source} takes over no contract column"
    for column in shared:
        assert column["description"] == f"{{{{ doc('{doc_name(source, column['name'])}') }}}}"
    rendered = dbt_project.manifest_path
    if rendered.exists():  # make test parses the project first (make dbt-manifest)
        nodes = json.loads(rendered.read_text())["nodes"]
        (node,) = [n for n in nodes.values() if n["name"] == f"stg_{source}"]
        for column in shared:
            name = column["name"]
            assert node["columns"][name]["description"] == contract[name], name


def test_every_contract_enum_is_checked_in_staging() -> None:
    """stg_<source>.<column> has an accepted_values test for every enum column of a contract."""
    checked = set()
    for model, column, values in _accepted_values():
        match = CONTRACT_VALUES.match(values) if isinstance(values, str) else None
        if match:
            checked.add((model, column, match["source"]))
    for source, column in _enums():
        assert (f"stg_{source}", column, source) in checked, f"stg_{source}.{column}"


# Where a contract enum may be listed: the contracts and the files generated from them.
_ENUM_HOMES = {
    REPO / "assets_project" / "contracts",
    REPO / "dbt_project" / SOURCES_PATH,
    REPO / "dbt_project" / MACRO_PATH,
}
_SKIP_DIRS = {".git", ".venv", "data", "target", "logs", "dbt_packages", "results"}
_WORD = re.compile(r"\w+")
# What may stand between two items of one written-out list: spaces, commas, quotes, brackets,
# list dashes and table bars (Python, SQL, YAML flow and block lists, Markdown tables, prose).
_BETWEEN = re.compile(r"^[\s,'\"`\[\](){}|-]*$")


def _repo_files() -> list[Path]:
    files = []
    for directory, subdirs, names in os.walk(REPO):
        subdirs[:] = [d for d in subdirs if d not in _SKIP_DIRS and not d.startswith(".")]
        files += [Path(directory) / name for name in names]
    return files


def _written_enums(text: str, enums: Mapping[tuple[str, str], tuple[str, ...]]) -> list[str]:
    """Runs of three or more distinct members of one enum written together (a list) in text."""
    words = list(_WORD.finditer(text))
    found = []
    for (source, column), enum in enums.items():
        runs: list[list[re.Match[str]]] = [[]]
        for word in words:
            run = runs[-1]
            if word[0] not in enum:
                runs.append([])
            elif run and not _BETWEEN.match(text[run[-1].end() : word.start()]):
                runs.append([word])
            else:
                run.append(word)
        for run in runs:
            if len({w[0] for w in run}) >= 3:
                line = text.count("\n", 0, run[0].start()) + 1
                found.append(f"line {line}: {source}.{column} {[w[0] for w in run]}")
    return found


def test_written_enums_finds_lists_of_members() -> None:
    """The scan below can fail: it sees lists in the forms the repo uses, and not prose."""
    enums = {("t", "c"): ("alpha", "beta", "gamma", "delta")}
    for listed in (
        '("alpha", "beta", "gamma")',
        "values: [alpha, beta, delta]",
        "x IN ('gamma', 'beta',\n    'alpha')",
        "  - alpha\n  - beta\n  - gamma\n",
        "not one of alpha, beta, gamma, delta",
    ):
        assert _written_enums(listed, enums), listed
    for prose in ("alpha, beta and gamma", "alpha = 1; beta = 2; gamma = 3", '"alpha", "beta"'):
        assert not _written_enums(prose, enums), prose


def test_no_contract_enum_is_written_by_hand() -> None:
    """Outside the contracts and the generated files, no file lists a contract enum's members.

    Code reads an enum with ``load_contract(source).enum(column)``; dbt with
    ``contract_values(source, column)``; bench/floor.sql with the variables bench/marts.py sets.
    """
    enums = _enums()
    for source, column in list(enums):
        for subset, members in load_contract(source).column(column).enum_subsets:
            enums[(source, f"{column}.{subset}")] = members
    problems = []
    for path in _repo_files():
        if any(path == home or home in path.parents for home in _ENUM_HOMES):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        problems += [f"{path.relative_to(REPO)} {found}" for found in _written_enums(text, enums)]
    assert problems == []
