"""The dbt CLI resource of the code location."""

import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version

from assets_project.defs.dbt.project import dbt_executable, dbt_project


class ShopDbtCliResource(DbtCliResource):
    """``DbtCliResource`` without two probes dagster-dbt runs before every dbt command.

    dagster-dbt 0.29 asks the executable for its version (``dbt --version``, a 2 s Python
    start) and builds a dbt adapter in this process (2.5 s of macro parsing) each time a dbt
    command starts. Measured in ``bench/pipeline.py``, that was half of Dagster's overhead over
    plain ``dbt build``. This project needs neither: its dbt is the one installed beside this
    interpreter, and the adapter only serves ``fetch_row_counts`` / ``fetch_column_metadata``,
    which it does not use (row counts and column types are read from the warehouse once dbt
    is done, see ``defs/dbt/assets.py``).
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        """The installed dbt-core's version when the executable is this interpreter's dbt."""
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        """No in-process adapter: dagster-dbt then skips only the adapter-based metadata."""
        return None


def dbt_resource() -> ShopDbtCliResource:
    """The dbt CLI resource for the project's dbt, as the code location binds it."""
    # DbtCliResource takes a DbtProject too (it reads project_dir from it); typed as str.
    return ShopDbtCliResource(
        project_dir=dbt_project,  # type: ignore[arg-type]
        dbt_executable=dbt_executable(),
    )
