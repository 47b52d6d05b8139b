"""A test-only code location for tests/test_instance_recovery.py.

One asset in the warehouse pool that, like a dbt build, holds the pool's slot while it runs: it
writes a marker (its pid and its parent's, the run worker's) and then waits until the test drops a
`release` file into the control folder named by `RECOVERY_TEST_DIR`.
"""

import os
import time
from pathlib import Path

import dagster as dg

POOL = "duckdb_warehouse"
CONTROL_DIR_ENV = "RECOVERY_TEST_DIR"
RELEASE_FILE = "release"
# Only a safety net so that an abandoned step process ends by itself; the test releases it.
_MAX_WAIT_SECONDS = 900


def marker_path(control_dir: Path, run_id: str) -> Path:
    """The file the pooled asset writes once its step holds the pool slot."""
    return control_dir / f"{run_id}.started"


@dg.asset(pool=POOL)
def pooled_asset(context: dg.AssetExecutionContext) -> None:
    """Hold the `duckdb_warehouse` slot until the test releases it."""
    control = Path(os.environ[CONTROL_DIR_ENV])
    marker_path(control, context.run_id).write_text(f"{os.getpid()} {os.getppid()}")
    deadline = time.monotonic() + _MAX_WAIT_SECONDS
    while not (control / RELEASE_FILE).exists():
        if time.monotonic() > deadline:
            raise dg.Failure("the test never released the pooled asset")
        time.sleep(0.2)


pooled_job = dg.define_asset_job("pooled_job", selection=[pooled_asset])

defs = dg.Definitions(assets=[pooled_asset], jobs=[pooled_job])
