"""kill -9 during the lake's writes, and writers from two processes at once.

Each kill trial starts a child process (from a fork server that has imported deltalake), lets it
announce that its write begins, kills it with SIGKILL after a random delay within the write's
measured duration, and opens the table: it must be at the old version with exactly the old
rows, or at the next version with exactly the new rows. Files a killed writer left behind are
never read. Both outcomes must occur among the trials of each operation (the kill delay adapts
to the write's cost), so the kills do land on both sides of the commit.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import FAILPOINT_ENV, FILE_FAILPOINTS
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout, delta_table, storage_options
from assets_project.lib.maintenance import MaintenanceSettings, compact
from assets_project.lib.merging import NewestPerKey

TRIALS = 20
#: On moto's S3 a trial costs 2-5x a local one (each table load reads every commit of a growing
#: log, a request each to a single-threaded server): half the trials there, both sides of the
#: commit still required (the kill window adapts within three or four trials).
TRIALS_ON_S3 = 10
ROWS = 10_000
KEYS = 15_000
SCHEMA = pa.schema(
    [
        ("k", pa.int64()),
        ("u", pa.int64()),
        ("v", pa.string()),
        ("_source_line", pa.int64()),
        ("p", pa.date32()),
    ]
)

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["deltalake", "pyarrow", "duckdb", "assets_project.lib.merging"])


def batch(seed: int, rows: int = ROWS) -> pa.Table:
    """Rows with keys drawn with repeats (a key may appear twice in one batch)."""
    rng = random.Random(seed)
    keys = [rng.randrange(KEYS) for _ in range(rows)]
    return pa.table(
        {
            "k": keys,
            "u": [rng.randrange(1000) for _ in range(rows)],
            "v": [f"s{seed}-{i}" for i in range(rows)],
            "_source_line": list(range(rows)),
            "p": [date(2026, 1, 1) + timedelta(days=k % 8) for k in keys],
        },
        schema=SCHEMA,
    )


def merge(uri: str, seed: int) -> None:
    """The PostgreSQL channel's merge: source deduplicated (newest wins), newer rows update."""
    newest = NewestPerKey(
        pa.RecordBatchReader.from_batches(SCHEMA, batch(seed).to_batches()), ["k"], "u"
    )
    (
        delta_table(uri)
        .merge(newest.reader(), predicate="t.k = s.k", source_alias="s", target_alias="t")
        .when_matched_update_all(predicate="s.u > t.u")
        .when_not_matched_insert_all()
        .execute()
    )


def _aws_environment() -> dict[str, str]:
    """The AWS variables of this process (an S3 lake's endpoint and credentials), for a child
    of the fork server, which kept the environment of its own start."""
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


def run_operation(
    operation: str, uri: str, seed: int, started: Connection, environment: dict[str, str]
) -> None:
    """The child: say the write begins, then write (the parent kills it at some point)."""
    os.environ.update(environment)
    rows = batch(seed)
    options = storage_options(uri)
    started.send(time.perf_counter())
    if operation == "append":
        write_deltalake(uri, rows, mode="append", partition_by=["p"], storage_options=options)
    elif operation == "overwrite":
        write_deltalake(uri, rows, mode="overwrite", partition_by=["p"], storage_options=options)
    elif operation == "merge":
        merge(uri, seed)
    elif operation == "compaction":
        compact(uri, MaintenanceSettings())
    else:
        raise ValueError(operation)


COLUMNS = ["k", "u", "v", "p"]


def normalized(table: pa.Table) -> pa.Table:
    """The data columns in plain types, rows sorted: equal tables hold equal rows."""
    table = table.select(COLUMNS).cast(pa.schema([SCHEMA.field(c) for c in COLUMNS]))
    return table.sort_by([(c, "ascending") for c in COLUMNS]).combine_chunks()


def content(uri: str) -> pa.Table:
    """Every row of the table's newest version, normalized."""
    return normalized(DeltaTable(uri).to_pyarrow_table(columns=COLUMNS))


def merged(old: pa.Table, seed: int) -> pa.Table:
    """What the merge of batch ``seed`` into ``old`` must leave."""
    current = {row["k"]: row for row in old.to_pylist()}
    newest: dict[int, dict] = {}
    for row in batch(seed).select(COLUMNS).to_pylist():  # of equal versions the later wins
        if row["k"] not in newest or row["u"] >= newest[row["k"]]["u"]:
            newest[row["k"]] = row
    for key, row in newest.items():
        if key not in current or row["u"] > current[key]["u"]:
            current[key] = row
    return normalized(pa.Table.from_pylist(list(current.values()), schema=SCHEMA.remove(3)))


def _run(operation: str, uri: str, seed: int) -> tuple[multiprocessing.Process, float]:
    receive, send = _context.Pipe(duplex=False)
    process = _context.Process(
        target=run_operation, args=(operation, uri, seed, send, _aws_environment())
    )
    process.start()
    send.close()
    started = receive.recv()
    return process, started


def _duration(operation: str, uri: str, seed: int) -> float:
    """How long the write takes here, measured on a run that is not killed."""
    process, _ = _run(operation, uri, seed)
    began = time.perf_counter()
    process.join()
    assert process.exitcode == 0
    return time.perf_counter() - began


def _fragment(uri: str, seed: int) -> None:
    """Small appends, so that a compaction has files to merge."""
    for i in range(3):
        write_deltalake(
            uri,
            batch(seed * 100 + i, rows=200),
            mode="append",
            partition_by=["p"],
            storage_options=storage_options(uri),
        )


EXPECTED: dict[str, Callable[[pa.Table, int], pa.Table]] = {
    "append": lambda old, seed: normalized(pa.concat_tables([old, normalized(batch(seed))])),
    "overwrite": lambda old, seed: normalized(batch(seed)),
    "merge": merged,
    "compaction": lambda old, seed: old,
}


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["append", "overwrite", "merge", "compaction"])
def test_a_kill_during_a_write_leaves_the_old_or_the_new_version_exactly(
    operation: str, lake_layout: LakeLayout
) -> None:
    """On local disk and on S3 (where the commit is a conditional put of the log entry)."""
    uri = f"{lake_layout.lake_uri}/table"
    options = storage_options(uri)
    if operation == "merge":  # a merge target holds one row per key
        write_deltalake(uri, SCHEMA.empty_table(), partition_by=["p"], storage_options=options)
        merge(uri, 0)
    else:
        write_deltalake(uri, batch(0), mode="append", partition_by=["p"], storage_options=options)
    if operation == "compaction":
        _fragment(uri, 1)
    duration = _duration(operation, uri, 1)
    rng = random.Random(16)
    outcomes = {"old": 0, "new": 0}
    # Kill within a window that widens after a kill before the commit and narrows after one
    # after it: the trials hit both sides of the commit whatever the write's cost here.
    window = duration
    trials = TRIALS_ON_S3 if uri.startswith("s3://") else TRIALS
    for trial in range(2, trials + 2):
        if operation == "compaction":
            _fragment(uri, trial)
        old_version, old = DeltaTable(uri).version(), content(uri)
        process, _ = _run(operation, uri, trial)
        time.sleep(rng.uniform(0, window))
        process.kill()  # SIGKILL
        process.join()
        table = DeltaTable(uri)
        now = content(uri)
        if table.version() == old_version:
            assert now.equals(old), f"trial {trial}: the old version's rows changed"
            outcomes["old"] += 1
            window *= 1.5
        else:
            assert table.version() == old_version + 1, f"trial {trial}: more than one commit"
            assert now.equals(EXPECTED[operation](old, trial)), f"trial {trial}: not the new rows"
            outcomes["new"] += 1
            window *= 0.7
    assert outcomes["old"] >= 1 and outcomes["new"] >= 1, f"one side never hit: {outcomes}"


def _append_many(uri: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        write_deltalake(
            uri,
            pa.table({"k": [i], "p": [date(2026, 1, 1)]}),
            mode="append",
            partition_by=["p"],
        )


def test_appends_from_two_processes_at_once_all_land_exactly_once(tmp_path: Path) -> None:
    uri = str(tmp_path / "table")
    empty = pa.schema([("k", pa.int64()), ("p", pa.date32())]).empty_table()
    write_deltalake(uri, empty, partition_by=["p"])
    writers = [_context.Process(target=_append_many, args=(uri, n * 1000, 40)) for n in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    keys = DeltaTable(uri).to_pyarrow_table(columns=["k"])["k"].to_pylist()
    assert sorted(keys) == [*range(1000, 1040), *range(2000, 2040)]
    assert DeltaTable(uri).version() == 80


def _ingest_all(data_dir: str, lake_uri: str, paths: list[str]) -> None:
    layout = LakeLayout(Path(data_dir), lake_uri, Path(data_dir) / "warehouse.duckdb")
    contract = load_contract("users")
    for path in paths:
        ingest_file(Path(path), contract, layout, source=f"users/{Path(path).name}")


def test_two_processes_ingesting_the_same_drops_land_each_row_once(
    layout: LakeLayout, tmp_path: Path
) -> None:
    folder = layout.landing_dir / "users"
    paths = []
    for n in range(6):
        path = folder / f"users_{n}.csv"
        lines = ["user_id,email,signup_date,user_tier,geographic_region,updated_at"]
        lines += [
            f"{n * 100 + i},u{n}_{i}@example.com,2025-01-0{1 + i % 9},free,europe,"
            f"2025-02-01 00:00:00"
            for i in range(50)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(str(path))
    writers = [
        _context.Process(target=_ingest_all, args=(str(layout.data_dir), layout.lake_uri, order))
        for order in (paths, list(reversed(paths)))
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    ids = DeltaTable(layout.raw_uri("users")).to_pyarrow_table(columns=["user_id"])
    assert sorted(ids["user_id"].to_pylist()) == [n * 100 + i for n in range(6) for i in range(50)]


_KILLED_INGEST = """
import sys
from pathlib import Path
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout

data, path = Path(sys.argv[1]), Path(sys.argv[3])
layout = LakeLayout(data_dir=data, lake_uri=sys.argv[2], warehouse_path=data / "w.duckdb")
ingest_file(path, load_contract("users"), layout, source=f"users/{path.name}", batch_id="killed")
"""


def _users_drop(layout: LakeLayout, n: int) -> Path:
    """A users CSV with 30 valid rows and 3 dead letters (bad e-mail), ids from ``n * 100``."""
    path = layout.landing_dir / "users" / f"users_{n}.csv"
    lines = ["user_id,email,signup_date,user_tier,geographic_region,updated_at"]
    lines += [
        f"{n * 100 + i},{'bad-email' if i % 11 == 10 else f'u{n}_{i}@example.com'},"
        "2025-01-01,free,europe,2025-02-01 00:00:00"
        for i in range(33)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _state(uri: str) -> tuple[int, list[tuple[str, int]]]:
    """The version of the table at ``uri`` and its record identities (source, line), sorted."""
    table = delta_table(uri)
    rows = table.to_pyarrow_table(columns=["_source", "_source_line"]).to_pylist()
    return table.version(), sorted((r["_source"], r["_source_line"]) for r in rows)


@pytest.mark.parametrize("step", FILE_FAILPOINTS)
def test_a_kill_around_the_commits_of_a_file_leaves_a_version_and_a_rerun_lands_it_once(
    lake_layout: LakeLayout, step: str
) -> None:
    """kill -9 before the raw commit (rows handed to the writer), between the raw and the
    dead-letter commits, and after both: each table is at its old or its new version with
    exactly those rows, and the file's second ingestion completes it exactly once."""
    contract = load_contract("users")
    layout = lake_layout
    ingest_file(_users_drop(layout, 0), contract, layout, source="users/users_0.csv")
    raw_uri, dlq_uri = layout.raw_uri("users"), layout.dlq_uri("users")
    (raw_version, raw_old), (dlq_version, dlq_old) = _state(raw_uri), _state(dlq_uri)
    path = _users_drop(layout, 1)
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_INGEST, str(layout.data_dir), layout.lake_uri, str(path)],
        env={**os.environ, FAILPOINT_ENV: step},
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    new_raw = [("users/users_1.csv", line) for line in range(1, 34) if line % 11]
    new_dlq = [("users/users_1.csv", line) for line in range(1, 34) if not line % 11]
    raw_committed = step != "file.rows_written"
    dlq_committed = step == "file.dead_letter_committed"
    assert _state(raw_uri) == (
        (raw_version + 1, sorted(raw_old + new_raw)) if raw_committed else (raw_version, raw_old)
    )
    assert _state(dlq_uri) == (
        (dlq_version + 1, sorted(dlq_old + new_dlq)) if dlq_committed else (dlq_version, dlq_old)
    )

    again = ingest_file(path, contract, layout, source="users/users_1.csv")
    assert again.already_ingested == dlq_committed
    assert _state(raw_uri)[1] == sorted(raw_old + new_raw)
    assert _state(dlq_uri)[1] == sorted(dlq_old + new_dlq)
