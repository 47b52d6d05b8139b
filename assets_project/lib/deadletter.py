"""Dead-letter rows: a rejected record as text, with every rule it broke.

Every channel (file drops, PostgreSQL, Kafka) builds its dead-letter rows here: one line of
reasons per record (:func:`reason_text`), a count per broken rule (:func:`tally_reasons`), the
rows in the dead-letter table's schema (:func:`dead_letter_rows`), and, for channels that
stream many batches before one commit, a local Parquet spool of them (:class:`RejectSpool`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from assets_project.lib.lake import DLQ_SCHEMA

Reason = dict[str, str | None]
"""One broken rule: ``{"column": ..., "rule": ..., "value": ...}`` (column, value optional)."""


def reason_text(reasons: list[Reason]) -> str:
    """The broken rules of one record as one line: ``column: rule (got 'value'); ...``."""
    parts = []
    for r in reasons:
        where = f"{r['column']}: " if r["column"] else ""
        value = "" if r["value"] is None else f" (got {r['value']!r})"
        parts.append(f"{where}{r['rule']}{value}")
    return "; ".join(parts)


def tally_reasons(counts: dict[str, int], reasons: list[list[Reason]]) -> None:
    """Add one to ``counts["<column>: <rule>"]`` for every rule each record broke."""
    for rs in reasons:
        for r in rs:
            key = f"{r['column'] or '<record>'}: {r['rule']}"
            counts[key] = counts.get(key, 0) + 1


def sorted_reasons(counts: dict[str, int]) -> dict[str, int]:
    """Reason counts, the most frequent first."""
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def dead_letter_rows(
    *,
    source: str | Sequence[str],
    source_lines: Sequence[int | None],
    batch_id: str,
    extracted_at: datetime,
    contract_version: int,
    records: Sequence[str | None],
    reasons: list[list[Reason]],
    schema: pa.Schema = DLQ_SCHEMA,
    extra: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """Rejected records as rows of a dead-letter table with ``schema``.

    ``source`` is one name for every row or one per row; ``extra`` holds columns a channel
    adds (a Kafka message's key), which ``schema`` must name.
    """
    n = len(source_lines)
    sources = [source] * n if isinstance(source, str) else list(source)
    columns: dict[str, Any] = {
        "_source": sources,
        "_source_line": pa.array(source_lines, pa.int64()),
        "_batch_id": [batch_id] * n,
        "_extracted_at": pa.array([extracted_at] * n, pa.timestamp("us")),
        "contract_version": pa.array([contract_version] * n, pa.int32()),
        "record": pa.array(records, pa.string()),
        "reason": [reason_text(r) for r in reasons],
        "reasons": reasons,
        **(extra or {}),
    }
    return pa.table(columns).cast(schema)


class RejectSpool:
    """Rejected rows written to a local Parquet file while the batches stream by."""

    def __init__(
        self, directory: Path, source: str, batch_id: str, extracted_at: datetime, version: int
    ):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"rejects-{uuid.uuid4().hex}.parquet"
        self._writer = pq.ParquetWriter(self.path, DLQ_SCHEMA)
        self._source = source
        self._batch_id = batch_id
        self._extracted_at = extracted_at
        self._version = version
        self.rows = 0
        self.reasons: dict[str, int] = {}

    def add(
        self, lines: list[int | None], records: list[str | None], reasons: list[list[Reason]]
    ) -> None:
        """Spool rejected records: their line, their text and the rules each one broke."""
        if not lines:
            return
        tally_reasons(self.reasons, reasons)
        table = dead_letter_rows(
            source=self._source,
            source_lines=lines,
            batch_id=self._batch_id,
            extracted_at=self._extracted_at,
            contract_version=self._version,
            records=records,
            reasons=reasons,
        )
        self._writer.write_table(table)
        self.rows += len(lines)

    def add_rejected(self, rejected: pa.Table) -> None:
        """Add validator output: reasons are few per row, so the list conversion is cheap."""
        self.add(
            rejected["_source_line"].to_pylist(),
            rejected["_record"].to_pylist(),
            rejected["_reasons"].to_pylist(),
        )

    def finish(self) -> pa.Table:
        """Close the spool and read back every row spooled."""
        self._writer.close()
        return pq.read_table(self.path, schema=DLQ_SCHEMA)

    def discard(self) -> None:
        """Close the spool and delete its file."""
        self._writer.close()
        self.path.unlink(missing_ok=True)
