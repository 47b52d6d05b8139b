"""Dagster's standard table metadata keys, which the UI shows as schema and row count."""

from __future__ import annotations

from typing import Any

import dagster as dg


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
