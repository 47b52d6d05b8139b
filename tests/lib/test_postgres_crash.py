"""kill -9 of the extraction process at random moments, then a normal run: nothing lost or doubled.

Each trial changes the source (inserts, updates, a late-committing transaction, some invalid
rows), starts an extraction in a child process and kills it with SIGKILL, either at a named
step (after the snapshot, after the Parquet files are written but before the Delta commit,
between the raw and the dead-letter commit, after both) or after a random delay. A normal run
follows, and the raw table must then equal the source's valid rows exactly and the
dead-letter table must hold every invalid row version once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from assets_project.demo.shop_db import init_orders, simulate_traffic
from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import FAILPOINT_ENV, POSTGRES_FAILPOINTS
from assets_project.lib.lake import LakeLayout
from assets_project.lib.postgres import extract_table
from tests.lib.test_postgres import assert_lake_equals_source

pytestmark = pytest.mark.slow

SIZE = 200_000  # 20k orders: a first load that takes a while to kill inside
TRIALS = 24
STEPS = POSTGRES_FAILPOINTS
_CHILD = """
import sys
from pathlib import Path
from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import LakeLayout
from assets_project.lib.postgres import extract_table

data = Path(sys.argv[1])
sys.stdout.write("imported\\n")
sys.stdout.flush()
layout = LakeLayout(data_dir=data, lake_uri=str(data / "lake"), warehouse_path=data / "w.duckdb")
extract_table(sys.argv[2], load_contract("orders"), layout, batch_id=sys.argv[3],
              full_refresh=sys.argv[4] == "1")
"""


def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    postgres_url: str, layout: LakeLayout
) -> None:
    rng = random.Random(20261122)
    init_orders(postgres_url, size=SIZE, seed=9, defects=0.01)
    orders = load_contract("orders")
    outcomes: list[str] = []
    window = 1.0
    for trial in range(TRIALS):
        if trial:
            simulate_traffic(
                postgres_url,
                inserts=200,
                updates=300,
                late=5,
                seed=trial,
                size=SIZE,
                defects=0.02,
            )
        step = STEPS[trial % len(STEPS)] if trial < 2 * len(STEPS) else None
        full_refresh = trial % 7 == 3
        env = {**os.environ, FAILPOINT_ENV: step or ""}
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(layout.data_dir),
                postgres_url,
                f"trial-{trial}",
                "1" if full_refresh else "0",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdout is not None
        child.stdout.readline()  # imports done: the extraction starts now
        if step is None:
            # A random moment within what the extraction takes (as the last normal run took).
            time.sleep(rng.uniform(0.0, window))
            child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=300)
        if child.returncode == -signal.SIGKILL:
            outcomes.append(f"killed at {step or 'random time'}")
        else:
            assert child.returncode == 0, stderr.decode()
            outcomes.append("finished before the kill")
        normal = extract_table(postgres_url, orders, layout, batch_id=f"normal-{trial}")
        window = max(normal.seconds, 0.05)
        assert_lake_equals_source(postgres_url, layout)
    killed = [o for o in outcomes if o.startswith("killed")]
    assert len(killed) >= 20, outcomes
    assert all(f"killed at {step}" in outcomes for step in STEPS), outcomes
