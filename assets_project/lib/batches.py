"""The batch core every channel shares: validated batches into raw rows, and what was counted.

A channel (file drop, PostgreSQL extraction, Kafka consumption, dead-letter replay) reads
records, validates them against the contract (:mod:`assets_project.lib.validation`), appends
the lake metadata columns to the valid ones (:func:`with_lake_metadata`) and sends the rest to
the dead-letter table (:mod:`assets_project.lib.deadletter`). Every channel reports the same
counters (:class:`LoadCounts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa

from assets_project.lib.contracts import Contract
from assets_project.lib.deadletter import RejectSpool
from assets_project.lib.lake import PARTITION_COLUMN
from assets_project.lib.readers import FileBatches
from assets_project.lib.validation import compile_validation, new_connection, run_validation


@dataclass(kw_only=True)
class LoadCounts:
    """The counters every channel reports for one load into a raw table.

    ``rows_in = rows_written + rows_rejected`` for a load that appends; a load that merges
    may write fewer rows than it read (rows the raw table already held).
    """

    rows_in: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    """``"<column>: <rule>"``: how many rejected records broke that rule."""
    seconds: float = 0.0


def extraction_time() -> datetime:
    """Now, as the lake's ``_extracted_at`` stores it (naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _constant(value: str | pa.Array | pa.ChunkedArray, n: int) -> pa.Array | pa.ChunkedArray:
    return pa.repeat(pa.scalar(value, pa.string()), n) if isinstance(value, str) else value


def with_lake_metadata(
    rows: pa.Table,
    contract: Contract,
    schema: pa.Schema,
    *,
    source: str | pa.Array | pa.ChunkedArray,
    batch_id: str | pa.Array | pa.ChunkedArray,
    extracted_at: datetime,
    source_lines: pa.Array | pa.ChunkedArray | None = None,
) -> pa.Table:
    """Valid rows with the lake metadata columns, in the order and types of ``schema``.

    ``source`` and ``batch_id`` are one value for every row or one per row; ``source_lines``
    replaces the rows' ``_source_line`` (the validator's position) when given.
    """
    n = rows.num_rows
    if source_lines is not None:
        rows = rows.drop_columns(["_source_line"]).append_column("_source_line", source_lines)
    table = rows.append_column("_source", _constant(source, n))
    table = table.append_column("_batch_id", _constant(batch_id, n))
    table = table.append_column(
        "_extracted_at", pa.repeat(pa.scalar(extracted_at, pa.timestamp("us")), n)
    )
    table = table.append_column(
        PARTITION_COLUMN, contract.partition_dates(rows[contract.partition_by])
    )
    return table.select(schema.names).cast(schema)


@dataclass(frozen=True)
class Plan:
    """How one opened file (or stream) maps onto the raw table."""

    opened: FileBatches
    schema: pa.Schema  # of the batches written to the raw table
    new_columns: tuple[str, ...]  # tabular columns the contract does not know, added as text


def valid_batches(
    plan: Plan,
    contract: Contract,
    spool: RejectSpool,
    counts: LoadCounts,
    source: str,
    batch_id: str,
    extracted_at: datetime,
) -> Iterator[pa.RecordBatch]:
    """The valid rows of ``plan``'s batches with their lake metadata; the rest to ``spool``.

    Counts every record read into ``counts.rows_in`` and every valid one into
    ``counts.rows_written`` as the batches stream by.
    """
    opened = plan.opened
    query = compile_validation(
        contract,
        opened.columns,
        jsonl=opened.format == "jsonl",
        passthrough=plan.new_columns,
    )
    connection = new_connection()
    try:
        for batch in opened.batches:
            valid, rejected = run_validation(connection, query, batch)
            counts.rows_in += batch.num_rows
            spool.add_rejected(rejected)
            if valid.num_rows:
                counts.rows_written += valid.num_rows
                rows = with_lake_metadata(
                    valid,
                    contract,
                    plan.schema,
                    source=source,
                    batch_id=batch_id,
                    extracted_at=extracted_at,
                )
                yield from rows.to_batches()
    finally:
        connection.close()
    malformed = opened.malformed
    counts.rows_in += len(malformed)
    spool.add(
        [m.line for m in malformed],
        [m.text for m in malformed],
        [[{"column": m.column, "rule": m.reason, "value": None}] for m in malformed],
    )


class RemembersError(Protocol):
    """A source that keeps the error it raised, because the reader or writer it feeds wraps
    it (pyarrow's CSV reader, delta-rs's writer)."""

    @property
    def error(self) -> BaseException | None: ...


@contextmanager
def source_error_as_itself(source: RemembersError) -> Iterator[None]:
    """Raise the error ``source`` remembers instead of the one that wraps it, if any.

    A Delta writer that consumes a stream of batches reports a failure of that stream as its
    own error (the original text in its message, the type lost); the caller wants the
    original (an unreadable file, a changed file, a lost database connection).
    """
    try:
        yield
    except Exception:
        if source.error is not None:
            raise source.error from None
        raise
