"""Many processes ingest different files of one source into the same S3 raw table at once.

Each process (spawned, as separate run workers are) calls ``ingest_file`` on its own demo file
at the same moment, into a raw table that does not exist yet (they also race to create it).
Every record must land once (raw or dead-letter), each table must get one commit per file, and a
second round of the same files must land nothing.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import (
    PARTITION_COLUMN,
    LakeLayout,
    delta_table,
    ensure_table,
    raw_schema,
)
from tests.concurrency import (
    SOURCE,
    Landed,
    assert_one_commit_per_file,
    demo_event_files,
    file_lines,
    retries,
)
from tests.services.s3 import MotoS3

PROCESSES = 8


def _create_worker(uri: str, start: Any, results: Any) -> None:  # pragma: no cover - spawned
    """Create the raw table at ``uri`` as soon as every process is ready; report the outcome."""
    start.wait(timeout=300)
    try:
        ensure_table(uri, raw_schema(load_contract(SOURCE)), [PARTITION_COLUMN])
        results.put("ok")
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))


def test_writers_racing_to_create_a_new_s3_table_all_get_it(s3: MotoS3) -> None:
    """The losers of the race for version 0 open the winner's table instead of failing."""
    context = multiprocessing.get_context("spawn")
    for _ in range(2):
        uri = f"s3://{s3.create_bucket()}/lake/raw/{SOURCE}"
        start, results = context.Barrier(PROCESSES), context.Queue()
        workers = [
            context.Process(target=_create_worker, args=(uri, start, results))
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        try:
            outcomes = [results.get(timeout=120) for _ in workers]
        finally:
            start.abort()
            for worker in workers:
                worker.join(timeout=60)
                if worker.is_alive():
                    worker.kill()
        assert outcomes == ["ok"] * PROCESSES, outcomes
        assert delta_table(uri).version() == 0


def _ingest_worker(
    data_dir: str, lake_uri: str, path: str, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a spawned process
    """Ingest one file as soon as every process is ready; report its outcome and timing."""
    layout = LakeLayout(
        data_dir=Path(data_dir), lake_uri=lake_uri, warehouse_path=Path(data_dir) / "w.duckdb"
    )
    contract = load_contract(SOURCE)
    source = f"{SOURCE}/{Path(path).name}"
    start.wait(timeout=300)
    began = time.time()
    try:
        result = ingest_file(Path(path), contract, layout, source=source)
    except Exception as exc:  # reported to the test, which fails on it
        results.put(("error", source, repr(exc), began, time.time()))
        return
    counts = (result.already_ingested, result.rows_in, result.rows_written, result.rows_rejected)
    results.put(("ok", source, counts, began, time.time()))


def _ingest_all_at_once(layout: LakeLayout, files: list[Path]) -> list[tuple[Any, ...]]:
    """One spawned process per file, released together by a barrier; their reports."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(files))
    results = context.Queue()
    workers = [
        context.Process(
            target=_ingest_worker,
            args=(str(layout.data_dir), layout.lake_uri, str(path), start, results),
        )
        for path in files
    ]
    for worker in workers:
        worker.start()
    try:
        return [results.get(timeout=300) for _ in workers]
    finally:
        start.abort()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()


def test_concurrent_ingests_into_one_s3_table_land_every_record_once(
    s3: MotoS3, s3_layout: LakeLayout
) -> None:
    files = demo_event_files(s3_layout.landing_dir, PROCESSES)
    assert len(files) == PROCESSES
    lines = {f"{SOURCE}/{p.name}": file_lines(p) for p in files}

    first = _ingest_all_at_once(s3_layout, files)

    errors = [r for r in first if r[0] != "ok"]
    assert not errors, errors
    # They ran at once: every ingest began before any other ended.
    assert max(r[3] for r in first) < min(r[4] for r in first)
    for _, source, (already, rows_in, written, rejected), _, _ in first:
        assert not already
        assert rows_in == lines[source] == written + rejected, source
    Landed.read(s3_layout).assert_each_line_once(lines)
    raw_commits = assert_one_commit_per_file(s3_layout.raw_uri(SOURCE), set(lines))
    dlq_commits = assert_one_commit_per_file(s3_layout.dlq_uri(SOURCE), set(lines))
    # The racing appends were rebased by delta-rs (recorded in the log), not lost.
    assert retries(raw_commits) + retries(dlq_commits) > 0
    versions = (
        delta_table(s3_layout.raw_uri(SOURCE)).version(),
        delta_table(s3_layout.dlq_uri(SOURCE)).version(),
    )

    # The same files again, all at once: nothing new lands.
    again = _ingest_all_at_once(s3_layout, files)
    assert [r[0] for r in again] == ["ok"] * PROCESSES, again
    assert all(r[2][0] for r in again), "a file was ingested twice"
    assert (
        delta_table(s3_layout.raw_uri(SOURCE)).version(),
        delta_table(s3_layout.dlq_uri(SOURCE)).version(),
    ) == versions
    Landed.read(s3_layout).assert_each_line_once(lines)
