"""PostgreSQL extraction: ours against ``pandas.read_sql`` and a plain ``COPY`` into Parquet.

The source is the demo ``orders`` table (``assets_project.demo.shop_db``) with ``rows`` rows
(0.2 % of them break the contract), in a database of its own on the server in DATABASE_URL or
on the machine's cluster. Implementations, each in a fresh process, each reading every row:

``ours``
    :func:`~assets_project.lib.postgres.extract_table` into an empty lake (a first, full load):
    ``COPY (SELECT …) TO STDOUT`` streamed through the contract validator into one Delta commit
    with the watermark, rejects to the dead-letter table.
``ours-incremental``
    The same lake after 1 % of the orders were updated: the watermark run, with its overlap,
    merged by key. Timed on its own (the full load before it is not).
``pandas``
    The tutorial way: ``pd.read_sql("SELECT * FROM orders", engine)`` with SQLAlchemy and
    psycopg, then ``write_deltalake`` of the DataFrame. No validation, one DataFrame in memory.
``copy-parquet``
    The floor: the same ``COPY … TO STDOUT`` read with pyarrow's streaming CSV reader (typed
    by the table's types) and written to one Parquet file batch by batch. No validation, no
    Delta log, no watermark.

Wall time covers the extraction only (imports done, connection not yet open). Peak memory is
the process's peak RSS during the run above its RSS just before (``VmHWM`` after a reset).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.measure import RunTimes

IMPLEMENTATIONS = ("ours", "ours-incremental", "pandas", "copy-parquet")


@dataclass
class Measurement(RunTimes):
    """One implementation's runs at one size."""

    implementation: str
    rows: int
    seconds: list[float]
    peak_mib: float
    rows_read: int


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def _copy_parquet(url: str, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from assets_project.lib.postgres import CopyStream, connect

    types = {
        "order_id": pa.int64(),
        "user_id": pa.int64(),
        "product_id": pa.int64(),
        "quantity": pa.int32(),
        "unit_price": pa.decimal128(12, 2),
        "status": pa.string(),
        "created_at": pa.timestamp("us"),
        "updated_at": pa.timestamp("us"),
    }
    rows = 0
    with connect(url) as connection, connection.cursor() as cursor:
        query = sql.SQL("COPY (SELECT {} FROM orders) TO STDOUT WITH (FORMAT csv)").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in types)
        )
        with cursor.copy(query) as copy:
            reader = pacsv.open_csv(
                io.BufferedReader(CopyStream(copy), buffer_size=1 << 20),
                read_options=pacsv.ReadOptions(column_names=list(types), block_size=16 << 20),
                convert_options=pacsv.ConvertOptions(column_types=types),
            )
            with pq.ParquetWriter(out / "orders.parquet", reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
    return rows


def _pandas(url: str, out: Path) -> int:
    import pandas as pd
    import sqlalchemy
    from deltalake import write_deltalake

    params = {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}
    engine = sqlalchemy.create_engine(
        sqlalchemy.URL.create(
            "postgresql+psycopg",
            username=params.get("user"),
            password=params.get("password"),
            host=params.get("host"),
            port=int(params.get("port") or 5432),
            database=params.get("dbname"),
        )
    )
    frame = pd.read_sql("SELECT * FROM orders", engine)
    write_deltalake(str(out / "orders"), frame, mode="overwrite")
    engine.dispose()
    return len(frame)


def _lake(out: Path) -> Any:
    from assets_project.lib.lake import LakeLayout

    return LakeLayout(data_dir=out, lake_uri=str(out / "lake"), warehouse_path=out / "w.duckdb")


def _ours(url: str, out: Path) -> int:
    from assets_project.lib.contracts import load_contract
    from assets_project.lib.postgres import extract_table

    result = extract_table(url, load_contract("orders"), _lake(out), batch_id="bench")
    if result.rows_written + result.rows_unchanged + result.rows_rejected != result.rows_in:
        raise RuntimeError(f"rows were lost: {result}")
    return result.rows_in


def worker(implementation: str, url: str, out: Path) -> dict[str, float]:
    """Run one implementation once in this process; its time, peak RSS growth and rows."""
    work: dict[str, Callable[[str, Path], int]] = {
        "ours": _ours,
        "ours-incremental": _ours,
        "pandas": _pandas,
        "copy-parquet": _copy_parquet,
    }
    import pandas  # noqa: F401  (imports are not timed)
    import pyarrow.parquet  # noqa: F401
    import sqlalchemy  # noqa: F401

    import assets_project.lib.postgres  # noqa: F401

    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    rows = work[implementation](url, out)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    return {"seconds": seconds, "peak_mib": (peak - before) / 1024, "rows": rows}


def _in_fresh_process(implementation: str, url: str, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.postgres", implementation, url, str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _database(admin_url: str, rows: int, log: Callable[[str], None]) -> str:
    from assets_project.demo.shop_db import init_orders

    name = f"bench_orders_{rows}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url) as connection:
        table = connection.execute("SELECT to_regclass('public.orders')").fetchone()
        count = (
            connection.execute("SELECT count(*) FROM orders").fetchone()
            if table and table[0]
            else None
        )
    if (count[0] if count else 0) != rows:
        log(f"loading {rows:,} orders into {name} ...")
        init_orders(url, size=rows * 10, seed=42, replace=True)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE orders")
    return url


def _touch(url: str, share: float) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(
            "UPDATE orders SET quantity = least(quantity + 1, 10), updated_at = now() "
            "WHERE order_id %% %s = 0",
            [round(1 / share)],
        )


def run_case(
    admin_url: str, rows: int, repeat: int, implementations: tuple[str, ...], log: Callable
) -> list[Measurement]:
    """Measure every implementation ``repeat`` times on a table of ``rows`` orders."""
    url = _database(admin_url, rows, log)
    results = []
    for implementation in implementations:
        runs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
                out = Path(tmp)
                if implementation == "ours-incremental":
                    _in_fresh_process("ours", url, out)  # the full load, not timed
                    _touch(url, 0.01)
                runs.append(_in_fresh_process(implementation, url, out))
            log(f"{implementation} {rows:,}: {runs[-1]['seconds']:.2f} s")
        results.append(
            Measurement(
                implementation=implementation,
                rows=rows,
                seconds=[r["seconds"] for r in runs],
                peak_mib=max(r["peak_mib"] for r in runs),
                rows_read=int(runs[-1]["rows"]),
            )
        )
    full = {
        m.implementation: m.rows_read for m in results if m.implementation != "ours-incremental"
    }
    if set(full.values()) != {rows}:
        raise RuntimeError(f"the implementations did not all read the {rows:,} rows: {full}")
    return results


BENCH_ROLE_PREFIX = "lakehouse_bench"  # not the tests' role


@contextmanager
def admin_url() -> Iterator[str]:
    """DATABASE_URL, or the machine's cluster started for the benchmark with a role of its
    own, dropped afterwards with its databases (a later run's new role could not read them)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from tests.services.postgres_cluster import drop_role, start_local_cluster

    url, why = start_local_cluster(role_prefix=BENCH_ROLE_PREFIX)
    if url is None:
        raise RuntimeError(f"no PostgreSQL for the benchmark: {why}; set DATABASE_URL")
    try:
        yield url
    finally:
        drop_role(url, BENCH_ROLE_PREFIX)


def format_case(measurements: list[Measurement]) -> str:
    """A Markdown table with the ratios against the floor."""
    floor = next(m for m in measurements if m.implementation == "copy-parquet")
    rows = measurements[0].rows
    lines = [
        f"{rows:,} orders in PostgreSQL 15 on the same machine (loopback):",
        "",
        "| case | rows read | runs | median s | rows/s | peak MiB | time vs floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        lines.append(
            f"| {m.implementation} | {m.rows_read:,} | {len(m.seconds)} | {m.median_s:.2f} "
            f"| {m.rows_read / m.median_s:,.0f} | {m.peak_mib:,.0f} "
            f"| {m.median_s / floor.median_s:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    implementation, url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    sys.stdout.write(json.dumps(worker(implementation, url, out)) + "\n")


if __name__ == "__main__":
    main()
