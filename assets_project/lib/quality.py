"""Data-quality facts about the raw and dead-letter Delta tables, computed with DuckDB.

The tables are handed to DuckDB as Arrow datasets, so filters (a batch id) are pushed down
into the Parquet scan and nothing touches the warehouse file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from assets_project.lib.contracts import Contract
from assets_project.lib.lake import (
    FileFilter,
    LakeLayout,
    delta_dataset,
    lake_connection,
    open_table,
    register_delta,
)
from assets_project.lib.validation import MISSING_RULE, quote_ident

EXAMPLES = 5


@dataclass(frozen=True)
class BatchCounts:
    """Rows of one batch in the raw and dead-letter tables."""

    raw: int
    dead_letter: int

    @property
    def total(self) -> int:
        return self.raw + self.dead_letter

    @property
    def reject_rate(self) -> float:
        return self.dead_letter / self.total if self.total else 0.0


@dataclass(frozen=True)
class Conflicts:
    """Keys that break a uniqueness rule, with a few examples."""

    count: int
    examples: list[dict[str, object]]


def of_batches(batch_ids: list[str]) -> FileFilter:
    """The files that may hold rows of ``batch_ids``: a batch writes its own files, so their
    ``_batch_id`` statistics (min = max) rule out every other batch's; a file a merge or a
    compaction wrote holds several batches and is read whenever one of them is asked for."""
    return [("_batch_id", "in", batch_ids)]


@contextmanager
def _connection(
    layout: LakeLayout, source: str, *, dlq: bool = False, files: FileFilter | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``raw`` (and with ``dlq``, ``dlq``) of ``source`` registered on a new connection; with
    ``files``, only the files that may hold the rows it selects (see :func:`of_batches`)."""
    with lake_connection() as connection:
        for name, uri in (("raw", layout.raw_uri(source)), ("dlq", layout.dlq_uri(source))):
            if name == "dlq" and not dlq:
                continue
            table = open_table(uri)
            if table is None:
                connection.execute(f"CREATE TABLE {name} (_batch_id VARCHAR)")
            else:
                register_delta(connection, name, table, files)
        yield connection


def batch_counts(layout: LakeLayout, source: str, batch_id: str) -> BatchCounts:
    """Rows that batch ``batch_id`` left in the raw and in the dead-letter table."""
    with _connection(layout, source, dlq=True, files=of_batches([batch_id])) as connection:
        raw, dead = connection.execute(
            "SELECT (SELECT count(*) FROM raw WHERE _batch_id = $b), "
            "(SELECT count(*) FROM dlq WHERE _batch_id = $b)",
            {"b": batch_id},
        ).fetchall()[0]
    return BatchCounts(raw=raw, dead_letter=dead)


def batches_counts(layout: LakeLayout, source: str, batch_ids: list[str]) -> dict[str, BatchCounts]:
    """Rows each of ``batch_ids`` has now in the raw and in the dead-letter table."""
    if not batch_ids:
        return {}
    with _connection(layout, source, dlq=True, files=of_batches(batch_ids)) as connection:
        rows = connection.execute(
            "WITH ids AS (SELECT unnest($ids::VARCHAR[]) AS _batch_id) "
            "SELECT ids._batch_id, "
            "(SELECT count(*) FROM raw WHERE raw._batch_id = ids._batch_id), "
            "(SELECT count(*) FROM dlq WHERE dlq._batch_id = ids._batch_id) FROM ids",
            {"ids": batch_ids},
        ).fetchall()
    return {batch: BatchCounts(raw=raw, dead_letter=dead) for batch, raw, dead in rows}


def duplicated_records(layout: LakeLayout, source: str, batch_ids: list[str]) -> int:
    """Records of ``batch_ids`` held more than once across the raw and dead-letter tables.

    A record is identified by where it was read (``_source``, ``_source_line``, ``_batch_id``);
    each belongs in exactly one of the two tables, once. Returns the surplus copies.
    """
    if not batch_ids or open_table(layout.raw_uri(source)) is None:
        return 0
    if open_table(layout.dlq_uri(source)) is None:
        return 0
    with _connection(layout, source, dlq=True, files=of_batches(batch_ids)) as connection:
        (surplus,) = connection.execute(
            "WITH records AS ("
            "SELECT _source, _source_line, _batch_id FROM raw WHERE _batch_id IN "
            "(SELECT unnest($ids::VARCHAR[])) UNION ALL "
            "SELECT _source, _source_line, _batch_id FROM dlq WHERE _batch_id IN "
            "(SELECT unnest($ids::VARCHAR[])) AND _source_line IS NOT NULL) "
            "SELECT coalesce(sum(copies - 1), 0) FROM "
            "(SELECT count(*) AS copies FROM records GROUP BY _source, _source_line, _batch_id)",
            {"ids": batch_ids},
        ).fetchall()[0]
    return int(surplus)


def conflicting_versions(
    layout: LakeLayout, contract: Contract, batch_id: str | None = None
) -> Conflicts:
    """Primary keys with two different records for the same version.

    Raw tables are append-only, so a key legitimately appears once per version and exact
    duplicates are harmless; two *different* records under one key and version are not.
    With ``batch_id``, only the keys that batch wrote are examined (a conflict needs one of
    its records, the older ones were judged with their own batch); else the whole table.
    Only versions held by more than one row can conflict: they are found first, on the key
    columns alone, and only their records are compared (a batch of new keys reads no
    payload column).
    """
    key = [quote_ident(k) for k in contract.primary_key]
    if contract.update_time:
        key.append(quote_ident(contract.update_time))
    listed = ", ".join(key)
    payload = ", ".join(quote_ident(c.name) for c in contract.columns)
    return _conflicts(
        layout,
        contract.name,
        batch_id,
        scope=key,
        candidates=f"SELECT {listed} FROM raw {{scoped}}GROUP BY ALL HAVING count(*) > 1",
        conflicts=(
            f"SELECT {listed}, count(DISTINCT hash({payload})) AS records FROM raw "
            f"SEMI JOIN {_CANDIDATES} USING ({listed}) "
            f"GROUP BY ALL HAVING count(DISTINCT hash({payload})) > 1"
        ),
    )


def shared_unique_values(
    layout: LakeLayout, contract: Contract, column: str, batch_id: str | None = None
) -> Conflicts:
    """Values of a ``unique`` column that belong to more than one primary key (with
    ``batch_id``: among the values that batch wrote). Values held by one row only cannot
    conflict: they are found first, on that column alone."""
    key = ", ".join(quote_ident(k) for k in contract.primary_key)
    target = quote_ident(column)
    return _conflicts(
        layout,
        contract.name,
        batch_id,
        scope=[target],
        candidates=(
            f"SELECT {target} FROM raw {{scoped}}WHERE {target} IS NOT NULL "
            "GROUP BY ALL HAVING count(*) > 1"
        ),
        conflicts=(
            f"SELECT {target}, count(DISTINCT hash({key})) AS keys FROM raw "
            f"SEMI JOIN {_CANDIDATES} USING ({target}) "
            f"GROUP BY {target} HAVING count(DISTINCT hash({key})) > 1"
        ),
    )


_BATCH_VALUES = "batch_values"
_CANDIDATES = "candidates"
_COUNT = "__conflicts"


def _conflicts(
    layout: LakeLayout,
    source: str,
    batch_id: str | None,
    *,
    scope: list[str],
    candidates: str,
    conflicts: str,
) -> Conflicts:
    """The rows of ``conflicts`` (a count, and a few as examples), in steps that each stop
    when they find nothing:

    1. with ``batch_id`` (unless it wrote every row of the table), the values of the
       ``scope`` columns (quoted) that batch wrote (read from the files that may hold it,
       :func:`of_batches`), kept in :data:`_BATCH_VALUES`; ``{scoped}`` in ``candidates``
       becomes a semi join on them;
    2. ``candidates``, the values that could conflict, kept in :data:`_CANDIDATES`;
    3. ``conflicts``, which reads the raw rows of the candidates.

    A step that finds nothing ends the check: the later ones could find nothing either.
    """
    table = open_table(layout.raw_uri(source))
    if table is None:
        return Conflicts(count=0, examples=[])
    with lake_connection() as connection:
        register_delta(connection, "raw", table)
        scoped = ""
        if batch_id is not None and not _holds_every_row(connection, table, batch_id):
            listed = ", ".join(scope)
            connection.execute(
                f"CREATE TEMP TABLE {_BATCH_VALUES} AS "
                f"SELECT DISTINCT {listed} FROM batch_files WHERE _batch_id = $batch",
                {"batch": batch_id},
            )
            if not _rows_in(connection, _BATCH_VALUES):
                return Conflicts(count=0, examples=[])
            scoped = f"SEMI JOIN {_BATCH_VALUES} USING ({listed}) "
        connection.execute(f"CREATE TEMP TABLE {_CANDIDATES} AS {candidates.format(scoped=scoped)}")
        if not _rows_in(connection, _CANDIDATES):
            return Conflicts(count=0, examples=[])
        # One pass: the count of every conflict rides along with the first few.
        result = connection.execute(
            f"SELECT *, count(*) OVER () AS {_COUNT} FROM ({conflicts}) LIMIT {EXAMPLES}"
        )
        columns = [d[0] for d in result.description or []]
        rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    count = int(rows[0][_COUNT]) if rows else 0
    examples: list[dict[str, object]] = [
        {name: str(value) for name, value in row.items() if name != _COUNT} for row in rows
    ]
    return Conflicts(count=count, examples=examples)


def _holds_every_row(
    connection: duckdb.DuckDBPyConnection, table: DeltaTable, batch_id: str
) -> bool:
    """Whether batch ``batch_id`` wrote every row of ``table`` (a first load, a full refresh):
    then its values are the whole table's, and collecting them first is a pass for nothing.
    Registers ``batch_files``, the files that may hold the batch; reads their ``_batch_id``
    only when they are all the table's files."""
    batch_files = delta_dataset(table, of_batches([batch_id]))
    connection.register("batch_files", batch_files)
    actions = pa.table(table.get_add_actions(flatten=True))
    records = actions.column("num_records").to_pylist() if actions.num_rows else []
    if len(batch_files.files) != actions.num_rows or None in records:
        return False
    (rows,) = connection.execute(
        "SELECT count(*) FROM batch_files WHERE _batch_id = $batch", {"batch": batch_id}
    ).fetchall()[0]
    return int(rows) == sum(records)


def _rows_in(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
    return int(count)


def event_time_column(contract: Contract) -> str:
    """The column that says when a record happened: its update time, else its partition column."""
    return contract.update_time or contract.partition_by


def _as_utc(value: object) -> datetime | None:
    """A date or (naive, UTC) timestamp from the lake as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return None


def _newest_from_stats(table: DeltaTable, column: str) -> tuple[bool, datetime | None]:
    """The column's maximum from the Delta log's file statistics: (known, value).

    Unknown when a file that holds values carries no maximum (written without statistics).
    """
    actions = pa.table(table.get_add_actions(flatten=True))
    name = f"max.{column}"
    if actions.num_rows == 0:
        return True, None
    if name not in actions.column_names:
        return False, None
    maxima = actions.column(name).to_pylist()
    records = actions.column("num_records").to_pylist()
    nulls = (
        actions.column(f"null_count.{column}").to_pylist()
        if f"null_count.{column}" in actions.column_names
        else [None] * len(maxima)
    )
    for maximum, count, null_count in zip(maxima, records, nulls, strict=True):
        if maximum is None and (null_count is None or null_count < count):
            return False, None
    known = [m for m in maxima if m is not None]
    return True, _as_utc(max(known)) if known else None


def newest_event_time(layout: LakeLayout, contract: Contract) -> datetime | None:
    """When the newest record in ``contract``'s raw table happened (UTC), or ``None`` if empty.

    The maximum of :func:`event_time_column` over the whole table, read from the Delta log's
    file statistics (no data file is opened); a table written without statistics is scanned
    with DuckDB instead, that one column only.
    """
    table = open_table(layout.raw_uri(contract.name))
    if table is None:
        return None
    column = event_time_column(contract)
    known, newest = _newest_from_stats(table, column)
    if known:
        return newest
    with _connection(layout, contract.name) as connection:
        (value,) = connection.execute(f"SELECT max({quote_ident(column)}) FROM raw").fetchall()[0]
    return _as_utc(value)


@dataclass(frozen=True)
class NullCounts:
    """Records of one batch without a value, per contract column."""

    rows: int
    """Records of the batch in the raw and dead-letter tables together."""
    columns: dict[str, int]

    def rate(self, column: str) -> float:
        return self.columns.get(column, 0) / self.rows if self.rows else 0.0


def batch_null_counts(layout: LakeLayout, contract: Contract, batch_id: str) -> NullCounts:
    """Per column, the records of batch ``batch_id`` that came without a value.

    A nullable column's nulls are counted in the raw table; a required column's are the
    batch's dead letters rejected for its missing value (the raw table has none).
    """
    if open_table(layout.raw_uri(contract.name)) is None:
        return NullCounts(rows=0, columns={})
    nullable = [c.name for c in contract.columns if not c.required]
    counted = ", ".join(f"count(*) FILTER (WHERE {quote_ident(name)} IS NULL)" for name in nullable)
    has_dlq = open_table(layout.dlq_uri(contract.name)) is not None
    files = of_batches([batch_id])
    with _connection(layout, contract.name, dlq=True, files=files) as connection:
        raw_row = connection.execute(
            f"SELECT count(*){', ' + counted if counted else ''} FROM raw WHERE _batch_id = $b",
            {"b": batch_id},
        ).fetchall()[0]
        missing: dict[str, int] = {}
        dead = 0
        if has_dlq:
            (dead,) = connection.execute(
                "SELECT count(*) FROM dlq WHERE _batch_id = $b", {"b": batch_id}
            ).fetchall()[0]
            rows = connection.execute(
                "SELECT reason.column, count(DISTINCT (_source, _source_line)) FROM "
                "(SELECT _source, _source_line, unnest(reasons) AS reason FROM dlq "
                "WHERE _batch_id = $b) WHERE reason.rule = $rule GROUP BY ALL",
                {"b": batch_id, "rule": MISSING_RULE},
            ).fetchall()
            missing = {str(column): int(count) for column, count in rows}
    columns = {name: int(count) for name, count in zip(nullable, raw_row[1:], strict=True)}
    for column in contract.columns:
        if column.required:
            columns[column.name] = missing.get(column.name, 0)
    ordered = {c.name: columns[c.name] for c in contract.columns}
    return NullCounts(rows=int(raw_row[0]) + int(dead), columns=ordered)
