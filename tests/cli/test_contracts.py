"""``python -m assets_project contracts``: lint, show, export and generate, run as a user does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from assets_project.cli.contracts import contract_files, generated, lint, main, records_json_schema
from assets_project.lib.contracts import CONTRACTS_ROOT, load_contract
from assets_project.lib.dbt_yaml import DBT_PROJECT, SOURCES_PATH
from assets_project.lib.lake import REPO_ROOT
from assets_project.lib.odcs import load_document, schema_problems
from tests.contract_documents import document, prop, set_custom, write


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assets_project", "contracts", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )


def test_lint_passes_on_the_shipped_contracts() -> None:
    result = _run("lint")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{len(contract_files())} contracts valid\n"


def _layer_copy(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_ROOT / "raw", root / "raw")
    return root


def test_lint_names_file_and_field_of_each_broken_contract(tmp_path: Path) -> None:
    root = _layer_copy(tmp_path)
    assert lint(root) == []
    users = document("users")
    prop(users, "user_tier")["required"] = "yes"  # breaks the ODCS JSON Schema
    write(root / "raw", "users", users)
    orders = document("orders")
    set_custom(prop(orders, "status"), "enumSubset", {"open": ["pending"]})  # typed view
    write(root / "raw", "orders", orders)
    problems = lint(root)
    assert len(problems) == 2
    assert problems[0].startswith(f"contract {root / 'raw' / 'orders.odcs.yaml'}: ")
    assert "schema[0].properties[5].customProperties[1].property" in problems[0]
    assert "'enumSubset' is unknown" in problems[0]
    assert problems[1].startswith(f"contract {root / 'raw' / 'users.odcs.yaml'}: ")
    assert "schema[0].properties[3].required: 'yes' is not of type 'boolean'" in problems[1]


def test_lint_exits_1_on_a_broken_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _layer_copy(tmp_path)
    users = document("users")
    users["version"] = 1  # a number, not the semver string ODCS asks for
    write(root / "raw", "users", users)
    assert main(["lint", "--contracts-root", str(root)]) == 1
    assert "users.odcs.yaml: version: 1 is not of type 'string'" in capsys.readouterr().err


def test_show_summarizes_a_contract() -> None:
    result = _run("show", "orders")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    orders = load_contract("orders")
    assert out.startswith(f"orders  version {orders.semver}  (active, v3.2.0)\n")
    assert "team:   checkout-team (checkout-team@shop.example)" in out
    assert "sla:    freshness 60 / 240 min" in out
    assert "server: shop-db (postgres)" in out
    quantity = next(line for line in out.splitlines() if line.strip().startswith("quantity"))
    assert "integer/integer" in quantity and orders.column("quantity").description in quantity


def test_show_of_an_unknown_table_says_which_exist() -> None:
    result = _run("show", "customers")
    assert result.returncode == 1
    assert "no single contract for table 'customers'" in result.stderr
    assert "users" in result.stderr


def test_export_odcs_is_a_valid_document_with_the_same_facts(tmp_path: Path) -> None:
    result = _run("export", "users", "--format", "odcs")
    assert result.returncode == 0, result.stderr
    exported = yaml.safe_load(result.stdout)
    assert schema_problems(exported) == []
    (tmp_path / "users.odcs.yaml").write_text(result.stdout)
    assert load_document(tmp_path / "users.odcs.yaml") == load_document(
        CONTRACTS_ROOT / "raw" / "users.odcs.yaml"
    )


def _record_schema(table: str) -> Draft202012Validator:
    result = _run("export", table, "--format", "json-schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_export_json_schema_judges_records_as_the_contract_does() -> None:
    users = _record_schema("users")
    good = {
        "user_id": 1,
        "email": "a@b.co",
        "signup_date": "2026-01-01",
        "user_tier": load_contract("users").enum("user_tier")[0],
        "geographic_region": load_contract("users").enum("geographic_region")[0],
        "updated_at": "2026-01-02T10:00:00Z",
    }
    assert list(users.iter_errors(good)) == []
    for change, message in [
        ({"user_tier": "platinum"}, "is not one of"),
        ({"email": "no-at-sign"}, "does not match"),
        ({"email": "x" * 250 + "@b.co"}, "is too long"),
        ({"user_id": "1"}, "is not of type 'integer'"),
    ]:
        errors = [e.message for e in users.iter_errors(good | change)]
        assert len(errors) == 1 and message in errors[0], (change, errors)
    missing = {k: v for k, v in good.items() if k != "email"}
    assert [e.message for e in users.iter_errors(missing)] == ["'email' is a required property"]

    events = _record_schema("user_events")
    event = {
        "event_id": "3f1c9a2e-8b7d-4e21-9a6f-0c5d2e7b1a94",
        "user_id": 1,
        "event_type": load_contract("user_events").enum("event_type")[0],
        "event_timestamp": "2026-01-02T10:00:00Z",
        "properties": None,
        "amount": None,
    }
    assert list(events.iter_errors(event)) == []
    assert list(events.iter_errors(event | {"amount": -1}))  # below the contract's minimum


def _root_copy(tmp_path: Path) -> Path:
    """A repository root holding the generated files as committed."""
    for relative in generated():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, tmp_path / relative)
    return tmp_path


def test_generate_check_fails_on_drift_until_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _root_copy(tmp_path)
    assert main(["generate", "--check", "--root", str(root)]) == 0
    sources = root / DBT_PROJECT / SOURCES_PATH
    sources.write_text(sources.read_text().replace("description:", "description: edited", 1))
    capsys.readouterr()
    assert main(["generate", "--check", "--root", str(root)]) == 1
    assert capsys.readouterr().err == (
        f"stale: {DBT_PROJECT / SOURCES_PATH} (run python -m assets_project contracts generate)\n"
    )
    assert main(["generate", "--root", str(root)]) == 0
    assert capsys.readouterr().out == f"wrote {DBT_PROJECT / SOURCES_PATH}\n"
    assert main(["generate", "--check", "--root", str(root)]) == 0
    assert sources.read_text() == (REPO_ROOT / DBT_PROJECT / SOURCES_PATH).read_text()


def test_generate_writes_missing_files(tmp_path: Path) -> None:
    assert main(["generate", "--root", str(tmp_path)]) == 0
    for relative, text in generated().items():
        assert (tmp_path / relative).read_text() == text


def test_the_command_is_listed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assets_project", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    assert "contracts" in result.stdout


@pytest.mark.parametrize("path", contract_files(), ids=lambda p: p.name)
def test_every_example_fits_the_exported_record_schema(path: Path) -> None:
    """The contracts' ``examples`` are records' values: each passes its column's JSON Schema."""
    schema = records_json_schema(path)
    examples = 0
    for name, column in schema["properties"].items():
        for example in column.get("examples", []):
            errors = list(Draft202012Validator(column).iter_errors(example))
            assert errors == [], f"{path.name} {name}: {example!r}: {errors[0].message}"
            examples += 1
    assert examples or path.parent.name != "raw"
