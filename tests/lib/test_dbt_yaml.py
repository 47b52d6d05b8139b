"""The dbt files generated from the contracts: faithful YAML, and ``--check`` catches drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from assets_project.lib.contracts import CONTRACTS_DIR, load_contract
from assets_project.lib.dbt_yaml import (
    DBT_PROJECT_DIR,
    MACRO_PATH,
    SOURCES_PATH,
    generated_files,
    main,
    render_sources,
)
from assets_project.lib.lake import METADATA_DESCRIPTIONS

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
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    data["description"] = description
    data["columns"][1]["description"] = description
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data))
    text = render_sources([load_contract("users", tmp_path)])
    assert all(len(line) <= 100 or '"' in line for line in text.splitlines())
    (raw,) = yaml.safe_load(text)["sources"]
    (table,) = raw["tables"]
    assert table["description"] == description
    columns = {c["name"]: c["description"] for c in table["columns"]}
    assert columns[data["columns"][1]["name"]] == description
    assert list(columns) == [c["name"] for c in data["columns"]] + list(METADATA_DESCRIPTIONS)


def _project_copy(tmp_path: Path) -> tuple[Path, Path]:
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    project = tmp_path / "dbt_project"
    for relative in (SOURCES_PATH, MACRO_PATH):
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DBT_PROJECT_DIR / relative, project / relative)
    return contracts, project


def test_check_fails_on_a_changed_enum_until_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contracts, project = _project_copy(tmp_path)
    dirs = ["--project-dir", str(project), "--contracts-dir", str(contracts)]
    assert main(["--check", *dirs]) == 0

    orders = yaml.safe_load((contracts / "orders.yml").read_text())
    (status,) = [c for c in orders["columns"] if c["name"] == "status"]
    status["enum"].append("on_hold")
    status["enum_subsets"]["open"] = [status["enum"][0], "on_hold"]
    (contracts / "orders.yml").write_text(yaml.safe_dump(orders, sort_keys=False))
    capsys.readouterr()
    assert main(["--check", *dirs]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"stale: {project / MACRO_PATH} (run python -m assets_project.lib.dbt_yaml (make dbt-yaml))"
    ]

    assert main(dirs) == 0
    assert capsys.readouterr().out == f"wrote {project / MACRO_PATH}\n"
    assert main(["--check", *dirs]) == 0
    macro = (project / MACRO_PATH).read_text()
    assert "'on_hold']," in macro and "'open': [" in macro


def test_check_fails_on_a_hand_edited_generated_file(tmp_path: Path) -> None:
    contracts, project = _project_copy(tmp_path)
    dirs = ["--project-dir", str(project), "--contracts-dir", str(contracts)]
    sources = project / SOURCES_PATH
    sources.write_text(sources.read_text().replace("description:", "description: edited", 1))
    assert main(["--check", *dirs]) == 1
    assert main(dirs) == 0
    assert sources.read_text() == generated_files(contracts)[SOURCES_PATH]
