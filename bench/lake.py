"""Lake maintenance: a raw table fed by many small drops, scanned before and after maintenance.

``drops`` demo user-event drops (JSON lines, the generator's data with its defects) are
ingested one by one with the file-drop ingestion (one Delta commit per drop, one small file per
drop and day). Then the downstream scan runs ``repeat`` times:

``scan``
    What a downstream reader does (the deduplication of ``stg_user_events``, then counts by
    event type and day), in DuckDB on the table's Arrow dataset, timed from opening the Delta
    table (its log replay included) to the result.
``dbt``
    (with ``--dbt``) plain ``dbt run --select stg_user_events --full-refresh`` in a fresh
    process against the bench lake and a scratch warehouse (dbt start-up included; the model
    only, its tests read other models).

Then :func:`~assets_project.lib.maintenance.maintain` compacts, vacuums (7 days: nothing is
deleted, the files are too new), checkpoints and cleans the log of the table, and the scans run
again. The scan's result must be identical before and after.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

from assets_project.demo.generate import generate
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout, lake_connection, register_delta
from assets_project.lib.maintenance import MaintenanceSettings, maintain, table_stats
from assets_project.lib.timetravel import log_files

REPO = Path(__file__).resolve().parents[1]
SCAN = """
WITH newest AS (
    SELECT * FROM events
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _extracted_at DESC) = 1
)
SELECT event_type, CAST(event_timestamp AS DATE) AS day, count(*) AS n
FROM newest GROUP BY ALL ORDER BY ALL
"""


@dataclass
class State:
    """The table and the timings of one side (before or after maintenance)."""

    label: str
    version: int
    files: int
    bytes: int
    log_files: int
    scan_s: list[float] = field(default_factory=list)
    dbt_s: list[float] = field(default_factory=list)


@dataclass
class LakeCase:
    drops: int
    events: int
    rows: int
    ingest_s: float
    maintain_s: float
    states: list[State]


def scan(uri: str) -> tuple[float, list[tuple]]:
    """Open the table and run the downstream query; the seconds and the result."""
    started = time.perf_counter()
    table = DeltaTable(uri)
    with lake_connection() as connection:
        register_delta(connection, "events", table)
        rows = connection.sql(SCAN).fetchall()
    return time.perf_counter() - started, rows


def dbt_build(layout: LakeLayout) -> float:
    """Plain ``dbt run`` of stg_user_events in a fresh process; its wall seconds."""
    env = {
        **os.environ,
        "LAKE_URI": layout.lake_uri,
        "WAREHOUSE_PATH": str(layout.warehouse_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    project = REPO / "dbt_project"
    started = time.perf_counter()
    done = subprocess.run(
        [
            "dbt",
            "run",
            "--select",
            "stg_user_events",
            "--full-refresh",
            "--profiles-dir",
            str(project),
            "--project-dir",
            str(project),
            "--target-path",
            str(layout.data_dir / "dbt_target"),
        ],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"dbt failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def _state(label: str, uri: str) -> State:
    table = DeltaTable(uri)
    stats = table_stats(table)
    return State(label, stats.version, stats.files, stats.bytes, len(log_files(table)[1]))


def run_case(
    drops: int,
    events: int,
    repeat: int,
    *,
    seed: int = 42,
    with_dbt: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> LakeCase:
    """Ingest ``drops`` drops of ``events`` events in all, measure, maintain, measure again."""
    work = Path(tempfile.mkdtemp(prefix="bench-lake-"))
    try:
        landing = work / "landing"
        generate(landing, size=events, seed=seed, files=drops)
        layout = LakeLayout(work, str(work / "lake"), work / "warehouse.duckdb")
        contract = load_contract("user_events")
        started = time.perf_counter()
        paths = sorted((landing / "user_events").iterdir())
        for path in paths:
            ingest_file(path, contract, layout, source=f"user_events/{path.name}")
        ingest_s = time.perf_counter() - started
        log(f"{len(paths)} drops ingested in {ingest_s:.1f} s")
        uri = layout.raw_uri("user_events")
        rows = DeltaTable(uri).count()
        before = _state("before", uri)
        states = [before]
        results = []
        for state in states:
            for _ in range(repeat):
                seconds, result = scan(uri)
                state.scan_s.append(seconds)
                results.append(result)
                if with_dbt:
                    state.dbt_s.append(dbt_build(layout))
            log(f"{state.label}: {state.files} files, scan {statistics.median(state.scan_s):.3f} s")
            if state is before:
                report = maintain(uri, MaintenanceSettings())
                log(f"maintenance: {report.seconds:.1f} s, steps {report.steps}")
                states.append(_state("after", uri))
        if any(r != results[0] for r in results):
            raise AssertionError("the scan's result changed with maintenance")
        return LakeCase(len(paths), events, rows, ingest_s, report.seconds, states)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_case(case: LakeCase) -> str:
    """A Markdown table: before and after maintenance, and the ratio."""
    before, after = case.states
    lines = [
        f"{case.drops} user-event drops ({case.events:,} generated events, {case.rows:,} raw "
        f"rows), ingested one by one in {case.ingest_s:.1f} s; maintenance (compaction, "
        f"vacuum, checkpoint, log cleanup) took {case.maintain_s:.1f} s. The scan's result is "
        "identical before and after.",
        "",
        "| state | version | files | MiB | log files | scan median s | dbt run median s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in case.states:
        dbt = f"{statistics.median(s.dbt_s):.2f}" if s.dbt_s else "-"
        lines.append(
            f"| {s.label} | {s.version} | {s.files:,} | {s.bytes / 2**20:.1f} | {s.log_files} "
            f"| {statistics.median(s.scan_s):.3f} | {dbt} |"
        )
    ratio = statistics.median(before.scan_s) / statistics.median(after.scan_s)
    lines += ["", f"Scan after maintenance: {ratio:.1f}x faster ({len(before.scan_s)} runs each)."]
    if before.dbt_s:
        dbt_ratio = statistics.median(before.dbt_s) / statistics.median(after.dbt_s)
        lines.append(f"dbt run of stg_user_events after maintenance: {dbt_ratio:.2f}x faster.")
    return "\n".join(lines) + "\n"
