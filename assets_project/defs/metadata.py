"""Materialization metadata: Dagster's standard table keys (the UI shows them as schema and row
count), and reading counts back from a stored materialization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

Metadata = dict[str, Any]
"""Metadata as the assets build it: plain values or ``dg.MetadataValue``s by key."""

NULL_COUNTS = "null_counts"
"""Raw materializations: the batch's records (``rows``) and, per contract column, how many
came without a value (``columns``), as JSON."""


def metadata_int(metadata: Mapping[str, dg.MetadataValue], key: str) -> int | None:
    """The number stored under ``key`` (an int or float entry), or ``None`` if there is none."""
    entry = metadata.get(key)
    value = entry.value if entry is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def table_metadata(
    column_schema: dg.TableSchema | None = None, row_count: int | None = None
) -> dict[str, Any]:
    """``dagster/column_schema`` and ``dagster/row_count`` entries for the given values."""
    metadata: dict[str, Any] = {}
    if column_schema is not None:
        metadata["dagster/column_schema"] = dg.MetadataValue.table_schema(column_schema)
    if row_count is not None:
        metadata["dagster/row_count"] = dg.MetadataValue.int(row_count)
    return metadata
