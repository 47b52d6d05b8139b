"""Reading Delta tables of the lake from DuckDB, on local disk and on S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pa_fs
import pytest
from deltalake import write_deltalake

from assets_project.lib.lake import (
    LAKE_QUERY_MEMORY_LIMIT,
    SPILL_ORPHAN_SECONDS,
    SPILL_PREFIX,
    VIRTUAL_HOSTED_VARIABLE,
    LakeLayout,
    arrow_filesystem,
    delta_table,
    lake_connection,
    register_delta,
)


def _write_files(uri: str, files: int, rows: int) -> None:
    for file in range(files):
        keys = pa.array([f"k{file}-{row}" for row in range(rows)])
        days = pa.array([date(2026, 3, 1 + file % 3)] * rows)
        write_deltalake(uri, pa.table({"k": keys, "d": days}), mode="append", partition_by=["d"])


@pytest.mark.slow
def test_a_scan_opened_and_never_read_lets_the_process_exit(lake_layout: LakeLayout) -> None:
    """DuckDB skips the probe side of a join whose build side is empty, after its Arrow scan
    was opened. Read through delta-rs's Python filesystem, the scan's pending reads called into
    the finalizing interpreter: the process crashed (SIGSEGV, abort) or hung at exit, 3 times
    out of 3 here on local disk and on S3. Read through Arrow's own filesystems it exits."""
    uri = lake_layout.raw_uri("exit_probe")
    _write_files(uri, files=30, rows=2_000)
    script = textwrap.dedent(
        f"""
        from assets_project.lib.lake import delta_table, lake_connection, register_delta
        with lake_connection() as connection:
            register_delta(connection, "raw", delta_table({uri!r}))
            connection.execute("CREATE TEMP TABLE wanted AS SELECT 'x' AS k WHERE false")
            print(connection.execute("SELECT count(*) FROM wanted JOIN raw USING (k)").fetchone())
        """
    )
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stdout.strip()) == (0, "(0,)"), done.stderr[-2000:]


def test_a_registered_table_reads_its_snapshot_with_partition_values(
    lake_layout: LakeLayout,
) -> None:
    uri = lake_layout.raw_uri("snapshot")
    _write_files(uri, files=4, rows=10)
    table = delta_table(uri)
    _write_files(uri, files=1, rows=5)  # a later commit: not in the snapshot registered
    with lake_connection() as connection:
        register_delta(connection, "t", table)
        rows = connection.execute(
            "SELECT d, count(*), count(DISTINCT k) FROM t GROUP BY d ORDER BY d"
        ).fetchall()
    assert rows == [
        (date(2026, 3, 1), 20, 20),
        (date(2026, 3, 2), 10, 10),
        (date(2026, 3, 3), 10, 10),
    ]


def test_a_lake_query_has_bounded_memory_and_spills_to_a_folder_removed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LAKE_QUERY_MEMORY_LIMIT, "64MB")
    with lake_connection() as connection:
        limit, spill = connection.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone() or (None, None)
        # A sort of ~400 MB of rows goes past the limit: DuckDB spills instead of failing.
        (rows,) = connection.execute(
            "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS h "
            "FROM range(5000000) t(i) ORDER BY h)"
        ).fetchone() or (None,)
    assert (limit, rows) == ("61.0 MiB", 5_000_000)
    assert spill and not Path(spill).exists()


def test_a_lake_query_memory_limit_duckdb_cannot_read_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LAKE_QUERY_MEMORY_LIMIT, "lots")
    with (
        pytest.raises(ValueError, match=r"LAKE_QUERY_MEMORY_LIMIT='lots': .*number"),
        lake_connection(),
    ):
        pass


@pytest.mark.parametrize(
    ("setting", "virtual"),
    [(None, False), ("true", True), ("TRUE", True), ("1", True), ("y", True), ("false", False)],
)
def test_the_s3_reader_addresses_buckets_as_delta_rs_does(
    setting: str | None, virtual: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By path with a custom endpoint, by virtual host when delta-rs's variable says so (as
    object_store reads it): the checks read the same bucket the writers wrote."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    if setting is None:
        monkeypatch.delenv(VIRTUAL_HOSTED_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VIRTUAL_HOSTED_VARIABLE, setting)
    filesystem = arrow_filesystem("s3://bucket/lake/raw/users")
    assert isinstance(filesystem, pa_fs.SubTreeFileSystem)
    assert filesystem.base_path == "bucket/lake/raw/users/"
    (options,) = filesystem.base_fs.__reduce__()[1]
    assert options["force_virtual_addressing"] is virtual
    assert options["endpoint_override"] == "http://127.0.0.1:9"
    assert options["region"] == "eu-west-1"


_KILLED_MID_QUERY = """
import os, signal
from assets_project.lib.lake import lake_connection
print(os.getpid(), flush=True)
with lake_connection() as connection:
    connection.execute(
        "SELECT count(*) FROM (SELECT md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h)"
    )
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_spill_folder_of_a_killed_query_is_swept_once_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed inside ``lake_connection`` leaves its spill folder; the next lake
    connection removes it once it is a day old, and never one whose process runs."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_QUERY],
        env={**os.environ, "TMPDIR": str(tmp_path), LAKE_QUERY_MEMORY_LIMIT: "64MB"},
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    (left,) = tmp_path.glob(f"{SPILL_PREFIX}{int(child.stdout)}-*")
    assert any(left.iterdir()), "the query spilled"
    live = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-kept"
    live.mkdir()
    day_ago = time.time() - SPILL_ORPHAN_SECONDS - 60
    os.utime(live, (day_ago, day_ago))

    with lake_connection():  # the killed process's folder is recent: kept
        pass
    assert left.exists() and live.exists()
    os.utime(left, (day_ago, day_ago))
    with lake_connection():
        pass
    assert not left.exists()
    assert live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
