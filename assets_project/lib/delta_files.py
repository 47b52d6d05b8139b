"""Parquet data files written into a Delta table by this project, in bounded memory, and the
one commit that publishes them.

delta-rs's partitioned writer keeps one open file per partition and encodes each in memory
until it reaches its target size (100 MiB by default); a table of a few MiB per daily
partition is therefore held whole, encoded, until the commit, and a write's memory grows with
the table (BENCHMARKS.md, PostgreSQL extraction). :class:`PartitionedParquetWriter` writes
row groups to the table's storage as they fill, holds at most :data:`PENDING_BYTES` of rows
not yet written and :data:`MAX_OPEN_FILES` open files, and returns the Delta ``add`` actions
of what it wrote; :func:`commit` publishes them, with the files they replace, as one Delta
commit. Files written but never committed are invisible to readers and are removed by vacuum.

Each file's statistics (``numRecords``, ``nullCount``, ``minValues``/``maxValues``) come from
the Parquet footer. Bounds are written only where they are exact or widened: integers and
dates as they are, timestamps widened to whole milliseconds (the precision delta-rs writes),
strings up to :data:`MAX_STAT_STRING` characters; other types get null counts only, so a
reader never skips a file that holds a matching row.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction

from assets_project.lib.lake import arrow_filesystem
from assets_project.lib.validation import quote_ident

ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group (DuckDB's own row-group size)."""
PENDING_BYTES = 64 << 20
"""Arrow bytes held for partitions whose row group is not full yet; past it the largest
partition's rows are written as a smaller row group."""
MAX_OPEN_FILES = 16
"""Open files at once; past it the least recently written file is finished."""
TARGET_FILE_BYTES = 128 << 20
"""A file is finished once it holds this many bytes (compaction's default target)."""
MAX_STAT_STRING = 64
"""Longer string bounds are left out of a file's statistics (no truncation rule needed)."""
MERGE_MEMORY = "256MB"
"""DuckDB's memory for a merge's source rows; the rest spills to disk."""
_MS = timedelta(milliseconds=1)


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _segment(column: str, value: str) -> str:
    """``column=value``, the folder of a partition. Only values that need no escaping (dates,
    numbers, plain words) are taken: the Delta log would need them URI-encoded once more."""
    if not value or set(value) - _PLAIN:
        raise ValueError(f"{column}: partition value {value!r} would need escaping in a path")
    return f"{column}={value}"


def partition_text(value: Any) -> str:
    """A partition value as the Delta log spells it (``2026-01-31`` for a date)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _stat_bound(value: Any, arrow_type: pa.DataType, *, upper: bool) -> Any | None:
    """A JSON statistics bound that is exact or wider than ``value``; None: leave it out."""
    if value is None:
        return None
    if pa.types.is_integer(arrow_type):
        return int(value)
    if pa.types.is_date32(arrow_type) or pa.types.is_date64(arrow_type):
        return value.isoformat()
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:
        bound = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if upper and bound != value:
            if bound > datetime.max - _MS:
                return None
            bound += _MS
        return bound.strftime("%Y-%m-%d %H:%M:%S.") + f"{bound.microsecond // 1000:03d}"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return value if len(value) <= MAX_STAT_STRING else None
    return None


def file_stats(metadata: pq.FileMetaData, schema: pa.Schema) -> str:
    """The Delta ``stats`` JSON of one Parquet file from its footer (see the module doc)."""
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    # Leaf columns by name: a nested column has several leaves, so positions would shift.
    leaves = (
        {
            metadata.row_group(0).column(i).path_in_schema: i
            for i in range(metadata.row_group(0).num_columns)
        }
        if metadata.num_row_groups
        else {}
    )
    for arrow_field in schema:
        index = leaves.get(arrow_field.name)
        if pa.types.is_nested(arrow_field.type) or index is None:
            continue
        low: Any = None
        high: Any = None
        bounded = metadata.num_row_groups > 0
        count = 0
        for group in range(metadata.num_row_groups):
            column = metadata.row_group(group).column(index)
            stats = column.statistics
            if stats is None or not stats.has_null_count:
                count = -1
                bounded = False
                break
            count += stats.null_count
            if stats.null_count == column.num_values and column.num_values:
                continue  # only nulls: no bound to widen
            if not stats.has_min_max:
                bounded = False
                continue
            low = stats.min if low is None else min(low, stats.min)
            high = stats.max if high is None else max(high, stats.max)
        if count < 0:
            continue
        nulls[arrow_field.name] = count
        if bounded and low is not None and high is not None:
            lower = _stat_bound(low, arrow_field.type, upper=False)
            upper = _stat_bound(high, arrow_field.type, upper=True)
            if lower is not None and upper is not None:
                minimum[arrow_field.name] = lower
                maximum[arrow_field.name] = upper
    return json.dumps(
        {
            "numRecords": metadata.num_rows,
            "minValues": minimum,
            "maxValues": maximum,
            "nullCount": nulls,
        },
        separators=(",", ":"),
    )


@dataclass
class _OpenFile:
    path: str
    partition: str | None
    sink: Any
    writer: pq.ParquetWriter


@dataclass
class _Pending:
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


class PartitionedParquetWriter:
    """Writes record batches as Parquet files of a Delta table, split by one partition column,
    in bounded memory (see the module doc). ``close()`` returns the ``add`` actions.

    ``schema`` is the batches' schema, partition column included; the files hold every other
    column. An error leaves the files written so far uncommitted (vacuum removes them).
    """

    def __init__(
        self,
        table_uri: str,
        schema: pa.Schema,
        partition_by: str | None,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        pending_bytes: int = PENDING_BYTES,
        max_open_files: int = MAX_OPEN_FILES,
        target_file_bytes: int = TARGET_FILE_BYTES,
    ) -> None:
        filesystem = arrow_filesystem(table_uri)
        if filesystem is None:
            raise ValueError(f"{table_uri}: no Arrow filesystem for this object store")
        self._fs: pa_fs.FileSystem = filesystem
        self._partition_by = partition_by
        self._file_schema = (
            schema.remove(schema.get_field_index(partition_by)) if partition_by else schema
        )
        self._row_group_rows = row_group_rows
        self._pending_limit = pending_bytes
        self._max_open = max_open_files
        self._target_bytes = target_file_bytes
        self._pending: dict[str | None, _Pending] = {}
        self._open: dict[str | None, _OpenFile] = {}
        self._adds: list[AddAction] = []
        self.rows = 0
        self.peak_pending_bytes = 0
        """The most Arrow bytes held at once (the bound this writer keeps)."""
        self.peak_open_files = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Add ``batch``'s rows; full row groups go to storage at once."""
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        if self._partition_by is None:
            self._add(None, batch)
            return
        column = batch.column(self._partition_by)
        if column.null_count:
            raise ValueError(f"{self._partition_by}: a partition value is null")
        bounds = pc.min_max(column).as_py()
        if bounds["min"] == bounds["max"]:
            self._add(partition_text(bounds["min"]), batch.drop_columns([self._partition_by]))
            return
        # One take per partition: a slice would keep the whole batch alive while any
        # partition holds rows of it (and report only its own bytes).
        order = pc.sort_indices(column)
        counts = pc.value_counts(column.take(order))
        rows = batch.drop_columns([self._partition_by])
        offset = 0
        for item in counts.to_pylist():
            n = item["counts"]
            self._add(partition_text(item["values"]), rows.take(order.slice(offset, n)))
            offset += n

    def _held(self) -> int:
        return sum(p.bytes for p in self._pending.values())

    def _add(self, partition: str | None, batch: pa.RecordBatch) -> None:
        pending = self._pending.setdefault(partition, _Pending())
        pending.batches.append(batch)
        pending.rows += batch.num_rows
        pending.bytes += batch.nbytes
        held = self._held()
        self.peak_pending_bytes = max(self.peak_pending_bytes, held)
        if pending.rows >= self._row_group_rows:
            self._flush(partition)
        while self._held() > self._pending_limit:
            largest = max(self._pending, key=lambda p: self._pending[p].bytes)
            self._flush(largest)

    def _flush(self, partition: str | None) -> None:
        pending = self._pending.pop(partition, None)
        if pending is None or not pending.rows:
            return
        table = pa.Table.from_batches(pending.batches, self._file_schema)
        pending.batches.clear()
        target = self._open.pop(partition, None) or self._start(partition)
        self._open[partition] = target  # most recently written last
        target.writer.write_table(table, row_group_size=self._row_group_rows)
        if target.sink.tell() >= self._target_bytes:
            self._finish(self._open.pop(partition))

    def _start(self, partition: str | None) -> _OpenFile:
        while len(self._open) >= self._max_open:
            oldest = next(iter(self._open))
            self._finish(self._open.pop(oldest))
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        if partition is not None and self._partition_by is not None:
            name = f"{_segment(self._partition_by, partition)}/{name}"
            self._fs.create_dir(name.rsplit("/", 1)[0], recursive=True)
        sink = self._fs.open_output_stream(name)
        self.peak_open_files = max(self.peak_open_files, len(self._open) + 1)
        writer = pq.ParquetWriter(sink, self._file_schema, compression="snappy")
        return _OpenFile(path=name, partition=partition, sink=sink, writer=writer)

    def _finish(self, target: _OpenFile) -> None:
        target.writer.close()
        size = target.sink.tell()
        target.sink.close()
        values = {self._partition_by: target.partition} if self._partition_by else {}
        self._adds.append(
            AddAction(
                path=target.path,
                size=size,
                partition_values=values,
                modification_time=int(time.time() * 1000),
                data_change=True,
                stats=file_stats(target.writer.writer.metadata, self._file_schema),
            )
        )

    def close(self) -> list[AddAction]:
        """Write what is pending, finish every file; the ``add`` actions of all files."""
        for partition in list(self._pending):
            self._flush(partition)
        for partition in list(self._open):
            self._finish(self._open.pop(partition))
        return self._adds

    def abort(self) -> None:
        """Close the open files without committing them (vacuum removes them)."""
        for target in self._open.values():
            try:
                target.writer.close()
                target.sink.close()
            except Exception:  # the original error is the one to raise
                continue
        self._open.clear()
        self._pending.clear()


COMMIT_ATTEMPTS = 8
"""Commits tried while other writers keep appending to the table (see :func:`commit`)."""


def appends_only(fs: pa_fs.FileSystem, since: int, until: int, app_ids: Sequence[str]) -> bool:
    """Whether every commit in (``since``, ``until``] of the table on ``fs`` only added files
    and recorded app transactions other than ``app_ids`` (a blind append of another writer)."""
    for version in range(since + 1, until + 1):
        with fs.open_input_stream(f"_delta_log/{version:020d}.json") as log:
            lines = log.read().decode().splitlines()
        for line in filter(None, (text.strip() for text in lines)):
            action = json.loads(line)
            if "commitInfo" in action or "add" in action:
                continue
            if "txn" in action and action["txn"].get("appId") not in app_ids:
                continue
            return False
    return True


def commit(
    table: DeltaTable,
    fs: pa_fs.FileSystem,
    adds: Sequence[AddAction],
    removes: Sequence[RemoveAction],
    properties: CommitProperties,
) -> None:
    """Publish ``adds`` and ``removes`` as one commit on top of ``table``'s loaded version.

    ``removes`` and the rows behind ``adds`` were computed from that version. When other
    writers committed since, the commit moves on top of theirs only if they all were blind
    appends (new files, no removal, no schema change, no transaction of the same app ids);
    anything else fails it with ``CommitFailedError``, and the caller reads again.
    """
    strict = CommitProperties(
        custom_metadata=properties.custom_metadata,
        app_transactions=properties.app_transactions,
        max_commit_retries=0,
    )
    app_ids = [t.app_id for t in properties.app_transactions or []]
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        read = table.version()
        try:
            table.create_write_transaction(
                [*adds, *removes],
                mode="append",
                schema=table.schema(),
                partition_by=table.metadata().partition_columns,
                commit_properties=strict,
            )
            return
        except CommitFailedError:
            table.update_incremental()
            if attempt == COMMIT_ATTEMPTS or not appends_only(fs, read, table.version(), app_ids):
                raise


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in ``schema``: its columns cast, the ones it lacks null (a file of a table
    whose schema grew later reads so too)."""
    names = set(batch.schema.names)
    unknown = names - set(schema.names)
    if unknown:
        raise ValueError(f"columns not in the table: {sorted(unknown)}")
    arrays = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class DataFile:
    """One file of a Delta snapshot (a row of ``get_add_actions``)."""

    path: str
    size: int
    partition: dict[str, Any]
    minimum: dict[str, Any]
    maximum: dict[str, Any]

    def removal(self) -> RemoveAction:
        return RemoveAction(
            path=self.path,
            data_change=True,
            deletion_timestamp=int(time.time() * 1000),
            size=self.size,
            partition_values={k: partition_text(v) for k, v in self.partition.items()},
        )

    def may_hold(self, column: str, low: Any, high: Any) -> bool:
        """Whether rows with ``column`` in [low, high] may be in this file (by its stats)."""
        lo, hi = self.minimum.get(column), self.maximum.get(column)
        if column in self.partition:
            lo = hi = self.partition[column]
        if lo is None or hi is None:
            return True
        if isinstance(hi, datetime):  # other writers keep milliseconds (delta-rs truncates)
            lo = lo - _MS if lo > datetime.min + _MS else datetime.min
            hi = hi + _MS if hi < datetime.max - _MS else datetime.max
        return bool(lo <= high and low <= hi)


def data_files(table: DeltaTable) -> list[DataFile]:
    """The files of ``table``'s loaded snapshot with their partition values and bounds."""
    actions = pa.table(table.get_add_actions(flatten=False)).to_pylist()
    return [
        DataFile(
            path=a["path"],
            size=a["size_bytes"],
            partition=a.get("partition") or {},
            minimum=a.get("min") or {},
            maximum=a.get("max") or {},
        )
        for a in actions
    ]


class TableFiles:
    """Reads and rewrites the data files of one loaded Delta snapshot."""

    def __init__(self, table: DeltaTable, **writer_options: Any) -> None:
        self.table = table
        self.schema = pa.schema(table.schema().to_arrow())
        partitions = table.metadata().partition_columns
        if len(partitions) > 1:
            raise ValueError(f"{table.table_uri}: more than one partition column")
        self.partition_by = partitions[0] if partitions else None
        filesystem = arrow_filesystem(table.table_uri)
        if filesystem is None:
            raise ValueError(f"{table.table_uri}: no Arrow filesystem for this object store")
        self.fs: pa_fs.FileSystem = filesystem
        self.writer = PartitionedParquetWriter(
            table.table_uri, self.schema, self.partition_by, **writer_options
        )
        self.removes: list[RemoveAction] = []

    def parquet(self, file: DataFile) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open_input_file(file.path))

    def read_columns(self, file: DataFile, columns: Sequence[str]) -> pa.Table:
        """``columns`` of ``file`` (partition columns from its partition value)."""
        stored = [c for c in columns if c != self.partition_by]
        table = self.parquet(file).read(columns=stored)
        for name in columns:
            if name == self.partition_by:
                table = table.append_column(
                    name, self._constant(file, table.num_rows).combine_chunks()
                )
        return table.select(list(columns)).cast(
            pa.schema([self.schema.field(name) for name in columns])
        )

    def _constant(self, file: DataFile, n: int) -> pa.Array:
        assert self.partition_by is not None
        kind = self.schema.field(self.partition_by).type
        return pa.repeat(pa.scalar(file.partition.get(self.partition_by), kind), n)

    def rewrite_without(self, file: DataFile, drop: pa.Array) -> None:
        """Replace ``file`` by a file of its rows except those where ``drop`` is true."""
        self.removes.append(file.removal())
        offset = 0
        for batch in self.parquet(file).iter_batches(batch_size=ROW_GROUP_ROWS):
            keep = pc.invert(drop.slice(offset, batch.num_rows))
            offset += batch.num_rows
            # Files other writers made may hold views (string_view), which filter cannot take.
            batch = pa.RecordBatch.from_arrays(
                [batch.column(n).cast(self.schema.field(n).type) for n in batch.schema.names],
                names=batch.schema.names,
            )
            kept = batch.filter(keep)
            if not kept.num_rows:
                continue
            if self.partition_by is not None:
                kept = kept.append_column(
                    self.schema.field(self.partition_by), self._constant(file, kept.num_rows)
                )
            self.writer.write_batch(conform(kept, self.schema))

    def remove(self, file: DataFile) -> None:
        self.removes.append(file.removal())

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(conform(batch, self.schema))

    def commit(self, properties: CommitProperties) -> None:
        """Publish what was written and removed as one commit."""
        commit(self.table, self.fs, self.writer.close(), self.removes, properties)

    def abort(self) -> None:
        self.writer.abort()


def remove_where(files: TableFiles, column: str, value: str) -> None:
    """Remove the rows of ``files``' table whose ``column`` equals ``value``.

    A file whose statistics exclude ``value`` is kept unread; a file that holds only such rows
    is removed; a file that holds some is rewritten without them.
    """
    for file in data_files(files.table):
        if not file.may_hold(column, value, value):
            continue
        matches = pc.equal(files.read_columns(file, [column]).column(column), value)
        matches = pc.fill_null(matches, False).combine_chunks()
        hits = pc.sum(matches).as_py() or 0
        if hits == len(matches):
            files.remove(file)
        elif hits:
            files.rewrite_without(file, matches)


@dataclass(frozen=True)
class MergeCounts:
    rows_in: int
    rows_written: int
    """Source rows written: new keys, and newer versions of keys the table held."""
    target_rows_replaced: int

    @property
    def rows_unchanged(self) -> int:
        """Source rows the table already held in the same or a newer version."""
        return self.rows_in - self.rows_written


def merge_newest(
    files: TableFiles,
    source: pa.RecordBatchReader,
    keys: Sequence[str],
    update_time: str,
    *,
    or_same: bool = False,
    refresh: Callable[[], None] | None = None,
) -> MergeCounts:
    """Merge ``source`` (one row per key) into ``files``' table by ``keys``, newest version
    wins: a source row replaces every row of its key with an older ``update_time`` (``or_same``:
    or the same), and is written unless its key is only held in the same or a newer version.

    The source is held by DuckDB within :data:`MERGE_MEMORY` (spilling beyond it). Only files
    whose key bounds overlap the source's are read, one at a time, and only their key and
    update-time columns; a file that loses rows is rewritten without them, streamed.
    ``refresh`` runs after the source is read and before the table's files are listed.
    """
    key_list = ", ".join(quote_ident(k) for k in keys)
    source_keys = ", ".join(f"s.{quote_ident(k)}" for k in keys)
    column = quote_ident(update_time)
    newer = f"coalesce(s.{column} {'>=' if or_same else '>'} t.{column}, false)"
    replaced = 0
    with tempfile.TemporaryDirectory(prefix="delta-merge-") as spill:
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f"SET memory_limit = '{MERGE_MEMORY}'")
            connection.execute("SET temp_directory = ?", [spill])
            connection.register("incoming", source)
            connection.execute("CREATE TABLE src AS SELECT * FROM incoming").fetchall()
            connection.unregister("incoming")
            connection.execute(
                f"CREATE TABLE matched AS SELECT {key_list}, false AS newer FROM src WHERE false"
            ).fetchall()
            bounds = connection.execute(
                "SELECT count(*), "
                + ", ".join(f"min({quote_ident(k)}), max({quote_ident(k)})" for k in keys)
                + " FROM src"
            ).fetchall()[0]
            rows_in = int(bounds[0])
            if refresh is not None:
                refresh()
            for file in data_files(files.table) if rows_in else []:
                if not all(
                    file.may_hold(k, bounds[1 + 2 * i], bounds[2 + 2 * i])
                    for i, k in enumerate(keys)
                ):
                    continue
                target = files.read_columns(file, [*keys, update_time])
                target = target.append_column("_position", pa.array(np.arange(target.num_rows)))
                connection.register("target", target)
                join = f"FROM target t JOIN src s USING ({key_list})"
                connection.execute(
                    f"INSERT INTO matched SELECT {source_keys}, {newer} {join}"
                ).fetchall()
                losers = connection.sql(f"SELECT t._position {join} WHERE {newer}").to_arrow_table()
                connection.unregister("target")
                if losers.num_rows:
                    drop = np.zeros(target.num_rows, dtype=bool)
                    drop[losers.column(0).to_numpy()] = True
                    files.rewrite_without(file, pa.array(drop))
                    replaced += losers.num_rows
            written = connection.sql(
                f"SELECT s.* FROM src s LEFT JOIN (SELECT {key_list}, bool_or(newer) AS newer "
                f"FROM matched GROUP BY ALL) m USING ({key_list}) WHERE m.newer IS NOT false"
            ).to_arrow_reader(ROW_GROUP_ROWS)
            rows_written = 0
            for batch in written:
                rows_written += batch.num_rows
                files.write(batch)
        finally:
            connection.close()
    return MergeCounts(rows_in=rows_in, rows_written=rows_written, target_rows_replaced=replaced)
