"""A model that breaks its contract fails ``dbt build`` with dbt's (or DuckDB's) message.

A tiny fixture project (tests/fixtures/dbt_contract, not the real marts): the model properties
of ``promised`` are generated from a fixture mart contract by the marts' generator, the SQL is
written by each test, and dbt-duckdb builds it into a fresh DuckDB file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from assets_project.defs.dbt.project import dbt_executable
from assets_project.lib.dbt_marts_yaml import render_marts_yaml
from assets_project.lib.mart_contracts import load_mart_contract

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dbt_contract"
KEPT = "select 1::bigint as order_id, 2.50::decimal(12, 2) as amount, 'a' as note"
INCREMENTAL = (
    "{{ config(materialized='incremental', unique_key='order_id', "
    "incremental_strategy='delete+insert', on_schema_change='fail') }}\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture project with ``promised``'s properties generated from its contract."""
    copy = tmp_path / "project"
    shutil.copytree(FIXTURE, copy)
    contract = load_mart_contract(copy / "promised.odcs.yaml")
    (copy / "models" / "_models.yml").write_text(render_marts_yaml([contract]))
    return copy


def _build(project: Path, sql: str) -> subprocess.CompletedProcess[str]:
    (project / "models" / "promised.sql").write_text(sql)
    return subprocess.run(
        [dbt_executable(), "--no-use-colors", "build", "--project-dir", ".", "--profiles-dir", "."],
        cwd=project,
        env={
            "WAREHOUSE_PATH": str(project / "warehouse.duckdb"),
            "HOME": str(project),
            "PATH": os.environ.get("PATH", ""),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _rows(project: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as connection:
        return connection.sql("select * from main.promised order by order_id").fetchall()


def test_a_model_that_keeps_its_contract_builds_with_its_constraints(project: Path) -> None:
    result = _build(project, KEPT)
    assert result.returncode == 0, result.stdout
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as connection:
        constraints = connection.sql(
            "select constraint_type, constraint_column_names from duckdb_constraints() "
            "where table_name = 'promised' order by all"
        ).fetchall()
    assert ("PRIMARY KEY", ["order_id"]) in constraints
    assert ("NOT NULL", ["amount"]) in constraints
    assert ("NOT NULL", ["note"]) not in constraints


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(
            "select 1::bigint as order_id, '2.50' as amount, 'a' as note",
            "This model has an enforced contract that failed.",
            id="column-type",
        ),
        pytest.param(
            "select 1::bigint as order_id, 2.50::decimal(12, 2) as amount",
            "This model has an enforced contract that failed.",
            id="missing-column",
        ),
        pytest.param(
            "select 1::bigint as order_id, null::decimal(12, 2) as amount, 'a' as note",
            "NOT NULL constraint failed: promised__dbt_tmp.amount",
            id="not-null",
        ),
        pytest.param(
            f"{KEPT}\nunion all\n{KEPT}",
            'PRIMARY KEY or UNIQUE constraint violation: duplicate key "1"',
            id="primary-key",
        ),
    ],
)
def test_a_model_that_breaks_its_contract_fails_the_build(
    project: Path, sql: str, message: str
) -> None:
    result = _build(project, sql)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout
    assert "ERROR=1" in result.stdout


def test_an_incremental_model_keeps_its_contract_on_every_run(project: Path) -> None:
    """delete+insert replaces a key under the primary key; a broken type fails the next run."""
    first = "select 1::bigint as order_id, 1.00::decimal(12, 2) as amount, 'a' as note"
    assert _build(project, INCREMENTAL + first).returncode == 0
    again = (
        "select 1::bigint as order_id, 5.00::decimal(12, 2) as amount, 'b' as note\n"
        "union all\n"
        "select 2::bigint as order_id, 2.00::decimal(12, 2) as amount, null as note"
    )
    result = _build(project, INCREMENTAL + again)
    assert result.returncode == 0, result.stdout
    assert _rows(project) == [(1, 5, "b"), (2, 2, None)]

    broken = "select 3::bigint as order_id, 3 as amount, 'c' as note"
    result = _build(project, INCREMENTAL + broken)
    assert result.returncode != 0
    assert "This model has an enforced contract that failed." in result.stdout, result.stdout
    assert _rows(project) == [(1, 5, "b"), (2, 2, None)]
