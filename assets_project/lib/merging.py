"""Source batches of a merge, deduplicated by key first: the newest version of each key wins.

A Delta merge inserts every source row that matches no target row, so a key that appears twice
in one source batch would land twice (and two updates of one target row are ambiguous). The
batch is therefore reduced to one row per key before the merge: the row with the newest
``order_by`` value, and of equal ones the last in the batch (highest ``_source_line``). DuckDB
does the reduction within :data:`MEMORY_LIMIT` and spills to a temporary folder beyond it, so a
large batch does not grow the process with its size. A source that enforces the key itself
(a PostgreSQL table's primary key, read in one snapshot) skips the reduction.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from assets_project.lib.validation import quote_ident

ROWS_PER_BATCH = 64_000
MEMORY_LIMIT = "256MB"
"""DuckDB's memory for one reduction; the rest spills to disk."""
POSITION = "_source_line"
"""The lake metadata column that orders the rows of one batch (the later one wins a tie)."""


def newest_per_key_query(keys: Sequence[str], order_by: str | None, columns: Sequence[str]) -> str:
    """``SELECT`` of one row per key of the relation ``batch``, newest first."""
    order = [f"{quote_ident(order_by)} DESC NULLS LAST"] if order_by else []
    if POSITION in columns:
        order.append(f"{quote_ident(POSITION)} DESC")
    partition = ", ".join(quote_ident(k) for k in keys)
    window = f"PARTITION BY {partition}" + (f" ORDER BY {', '.join(order)}" if order else "")
    return f"SELECT * FROM batch QUALIFY row_number() OVER ({window}) = 1"


class NewestPerKey:
    """A record batch reader over one row per key of ``reader`` (see the module doc).

    ``rows_in`` and ``rows_out`` are known once the batches have been read; the difference is
    the number of older versions and duplicates dropped. ``unique``: the source guarantees
    one row per key, and the batches pass through as they are (counted).
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        keys: Sequence[str],
        order_by: str | None,
        *,
        unique: bool = False,
    ) -> None:
        self._reader = reader
        self._query = newest_per_key_query(keys, order_by, reader.schema.names)
        self._unique = unique
        self.schema = reader.schema
        self.rows_in = 0
        self.rows_out = 0

    def _counted(self) -> Iterator[pa.RecordBatch]:
        for batch in self._reader:
            self.rows_in += batch.num_rows
            yield batch

    def _passed(self) -> Iterator[pa.RecordBatch]:
        for batch in self._counted():
            self.rows_out += batch.num_rows
            yield batch

    def _batches(self) -> Iterator[pa.RecordBatch]:
        with tempfile.TemporaryDirectory(prefix="newest-per-key-") as spill:
            yield from self._reduced(spill)

    def _reduced(self, spill: str) -> Iterator[pa.RecordBatch]:
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            connection.execute("SET temp_directory = ?", [spill])
            source = pa.RecordBatchReader.from_batches(self.schema, self._counted())
            connection.register("batch", source)
            result = connection.sql(self._query).to_arrow_reader(ROWS_PER_BATCH)
            for batch in result:
                self.rows_out += batch.num_rows
                yield batch.cast(self.schema)
        finally:
            connection.close()

    def reader(self) -> pa.RecordBatchReader:
        """The deduplicated batches, in ``reader``'s schema."""
        batches = self._passed() if self._unique else self._batches()
        return pa.RecordBatchReader.from_batches(self.schema, batches)
