"""Lake command line: ``python -m assets_project lake show|history|as-of|restore``.

* ``show``: every raw and dead-letter table with its version, files, bytes and rows.
* ``history TABLE``: the commits of one table, newest first: operation, batch id and the app
  transactions (the exactly-once ledger: files, Kafka offsets, PostgreSQL watermarks).
* ``as-of TABLE --version N | --timestamp T``: the table's rows as they were, printed, or
  written to ``--output`` (``.parquet`` or ``.csv``).
* ``restore TABLE --version N | --timestamp T --yes``: make that state the newest again, as a
  new commit (the history keeps everything); the ledger goes back with it, so ingestion takes
  up again what the restore removed. Without ``--yes`` it only says what it would do.

``TABLE`` is ``raw/<source>``, ``dlq/<source>`` or ``<source>`` (its raw table). The lake is
``LAKE_URI`` (default ``data/lake``). Only ``restore`` writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assets_project.lib.contracts import source_names
from assets_project.lib.lake import LakeLayout, delta_table, is_delta_table
from assets_project.lib.maintenance import table_stats
from assets_project.lib.timetravel import AsOf, history, parse_as_of, read_as_of, restore

KINDS = ("raw", "dlq")


def table_uri(layout: LakeLayout, name: str) -> str:
    """The URI of ``raw/<source>``, ``dlq/<source>`` or ``<source>`` (raw); ValueError if none."""
    kind, _, source = name.rpartition("/")
    kind = kind or "raw"
    if kind not in KINDS or source not in source_names():
        raise ValueError(
            f"unknown table {name!r}: use raw/<source> or dlq/<source>, sources: "
            + ", ".join(source_names())
        )
    return layout.raw_uri(source) if kind == "raw" else layout.dlq_uri(source)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _print_rows(out: TextIO, header: Sequence[str], rows: list[Sequence[object]]) -> None:
    """A plain left-aligned text table."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def show(layout: LakeLayout, out: TextIO) -> int:
    """List every raw and dead-letter table: version, files, bytes, rows, last commit."""
    rows: list[Sequence[object]] = []
    for source in source_names():
        for kind in KINDS:
            uri = table_uri(layout, f"{kind}/{source}")
            if not is_delta_table(uri):
                rows.append((f"{kind}/{source}", "-", "-", "-", "-", "not created yet"))
                continue
            table = delta_table(uri)
            stats = table_stats(table)
            last = table.history(1)[0]
            rows.append(
                (
                    f"{kind}/{source}",
                    stats.version,
                    stats.files,
                    _size(stats.bytes),
                    table.count(),
                    f"{last.get('operation', '?')}",
                )
            )
    _print_rows(out, ("table", "version", "files", "size", "rows", "last operation"), rows)
    return 0


def _ledger(txns: dict[str, int], width: int = 3) -> str:
    """App transactions of one commit, shortened: ``file-1a2b3c4d…=1, kafka:t:0=42``."""
    parts = [
        f"{app[:13] + '…' if app.startswith('file-') else app}={v}"
        for app, v in sorted(txns.items())
    ]
    more = f" (+{len(parts) - width})" if len(parts) > width else ""
    return ", ".join(parts[:width]) + more


def show_history(uri: str, limit: int | None, out: TextIO) -> int:
    """The commits of one table, newest first."""
    rows: list[Sequence[object]] = [
        (
            c.version,
            c.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            c.operation,
            c.batch_id or "",
            _ledger(c.app_transactions),
        )
        for c in history(delta_table(uri), limit)
    ]
    _print_rows(out, ("version", "timestamp (UTC)", "operation", "batch_id", "app txns"), rows)
    return 0


def as_of(uri: str, when: AsOf, output: Path | None, limit: int, out: TextIO) -> int:
    """Print (the first ``limit`` rows of) the table as of ``when``, or write it to ``output``."""
    rows = read_as_of(uri, when)
    if output is not None:
        if output.suffix == ".parquet":
            pq.write_table(rows, output)
        elif output.suffix == ".csv":
            pacsv.write_csv(_plain(rows), output)
        else:
            raise ValueError(f"{output}: write .parquet or .csv")
        out.write(f"{rows.num_rows} rows written to {output}\n")
        return 0
    connection = duckdb.connect()
    try:
        relation = connection.from_arrow(rows)
        out.write(f"{rows.num_rows} rows\n")
        out.write(str(relation.limit(limit)))
    finally:
        connection.close()
    return 0


def _plain(rows: pa.Table) -> pa.Table:
    """``rows`` with string view and nested columns as plain text (for the CSV writer)."""
    columns = []
    for column in rows.columns:
        if pa.types.is_string_view(column.type):
            column = column.cast(pa.string())
        elif pa.types.is_nested(column.type):
            column = pa.array([None if v is None else str(v) for v in column.to_pylist()])
        columns.append(column)
    return pa.table(columns, names=rows.column_names)


def restore_table(uri: str, when: AsOf, yes: bool, out: TextIO) -> int:
    """Restore the table to ``when`` (only with ``yes``; otherwise say what would happen)."""
    table = delta_table(uri)
    target = delta_table(uri)
    target.load_as_version(when)
    if not yes:
        out.write(
            f"would restore {uri} from version {table.version()} ({table.count()} rows) to "
            f"version {target.version()} ({target.count()} rows) as a new commit; "
            "add --yes to do it\n"
        )
        return 2
    result = restore(uri, target.version())
    out.write(
        f"restored {uri} to version {result.restored_to}: new version {result.version}, "
        f"{result.files_removed} files removed, {result.files_restored} restored; "
        f"{len(result.ledger_rewound)} app transactions rewound\n"
    )
    return 0


def _when(args: argparse.Namespace) -> AsOf:
    return parse_as_of(str(args.version) if args.version is not None else args.timestamp)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m assets_project lake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="every table with version, files, size and rows")
    hist = commands.add_parser("history", help="the commits of one table")
    hist.add_argument("table")
    hist.add_argument("--limit", type=int, default=None, help="newest N commits only")
    for name, text in (("as-of", "read a table as of a version or time"), ("restore", "")):
        sub = commands.add_parser(name, help=text or "restore a table to a version or time")
        sub.add_argument("table")
        when = sub.add_mutually_exclusive_group(required=True)
        when.add_argument("--version", type=int)
        when.add_argument("--timestamp", help="ISO 8601, e.g. 2026-12-01T08:00:00Z (naive: UTC)")
        if name == "as-of":
            sub.add_argument("--output", type=Path, help="write to this .parquet or .csv file")
            sub.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
        else:
            sub.add_argument("--yes", action="store_true", help="do it (a new commit)")
    args = parser.parse_args(argv)
    layout = LakeLayout.from_env()
    out = sys.stdout
    try:
        if args.command == "show":
            return show(layout, out)
        uri = table_uri(layout, args.table)
        if not is_delta_table(uri):
            sys.stderr.write(f"{args.table}: no Delta table at {uri} yet\n")
            return 1
        if args.command == "history":
            return show_history(uri, args.limit, out)
        if args.command == "as-of":
            return as_of(uri, _when(args), args.output, args.limit, out)
        return restore_table(uri, _when(args), args.yes, out)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
