"""The one cached dbt project of the code location."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from assets_project.lib.lake import REPO_ROOT

DBT_PROJECT_DIR: Path = REPO_ROOT / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt from the models on load; elsewhere it must exist
# already (`make dbt-manifest`, which `make dev` and `make test` run).
dbt_project.prepare_if_dev()


def dbt_executable() -> str:
    """The dbt beside this interpreter (the project's virtualenv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")
