"""Arrow's allocator in the processes that load the code location: freed memory goes back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest

from assets_project.lib.memory import ARROW_POOL_VARIABLE

REPO = Path(__file__).resolve().parents[2]

_POOL_AFTER_LOADING = """
import pyarrow as pa
import assets_project.definitions
print(pa.default_memory_pool().backend_name)
"""

_READ_SORT_FREE = """
import gc, sys, time
import pyarrow as pa
import pyarrow.csv as pa_csv
from assets_project.lib.memory import use_returning_memory_pool

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024

if sys.argv[2] == "ours":
    use_returning_memory_pool()
base = rss_mib()
table = pa_csv.read_csv(sys.argv[1])
ordered = table.sort_by([("a", "ascending")])
peak = rss_mib()
del table, ordered
gc.collect()
pa.default_memory_pool().release_unused()
# Freed pages go back within the allocator's decay time (about a second), idle or not.
kept = []
for _ in range(20):
    kept.append(rss_mib() - base)
    time.sleep(0.5)
print(pa.default_memory_pool().backend_name, peak - base, min(kept))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _expected_pool() -> str:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return "system"
    return "jemalloc"


def test_loading_the_code_location_switches_arrow_to_a_pool_that_returns_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ARROW_POOL_VARIABLE, raising=False)
    assert _python(_POOL_AFTER_LOADING) == _expected_pool()


@pytest.mark.parametrize("chosen", ["system", "mimalloc"])
def test_a_pool_chosen_in_the_environment_is_kept(chosen: str) -> None:
    assert _python(_POOL_AFTER_LOADING, env={ARROW_POOL_VARIABLE: chosen}) == chosen


def test_buffers_freed_after_a_threaded_read_go_back_to_the_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV read on Arrow's threads and sorted, then dropped: within ten seconds at most a
    third of what the process grew by is still resident (a jemalloc that never decays, or
    a decay longer than a step, keeps it all)."""
    monkeypatch.delenv(ARROW_POOL_VARIABLE, raising=False)
    rows = 2_000_000
    path = tmp_path / "in.csv"
    numbers = pc.random(rows, initializer=7)
    table = pa.table({"a": numbers, "b": pa.array(range(rows)), "c": pc.cast(numbers, pa.string())})
    pa_csv.write_csv(table, path)
    pool, grown, kept = _python(_READ_SORT_FREE, str(path), "ours").split()
    assert pool == _expected_pool()
    assert int(grown) > 100, f"the read grew the process by {grown} MiB only"
    assert int(kept) < int(grown) / 3, f"{kept} of {grown} MiB stayed resident"
