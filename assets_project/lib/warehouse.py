"""Read-only facts about the DuckDB warehouse: table row counts and column types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from assets_project.lib.validation import quote_ident


@dataclass(frozen=True)
class TableFacts:
    """Row count and (column, type) pairs of one warehouse table."""

    row_count: int
    columns: tuple[tuple[str, str], ...]


def table_facts(warehouse_path: Path, names: set[str]) -> dict[str, TableFacts]:
    """Facts for the tables of ``names`` that exist in the warehouse's ``main`` schema.

    Opens the file read-only; call it only when no other process writes the warehouse
    (DuckDB refuses a second process while one holds the file for writing).
    """
    if not names or not warehouse_path.exists():
        return {}
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND list_contains(?, table_name) "
            "ORDER BY table_name, ordinal_position",
            [sorted(names)],
        ).fetchall()
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, data_type in rows:
            columns.setdefault(table, []).append((column, data_type))
        facts = {}
        for table, cols in columns.items():
            (count,) = connection.execute(
                f"SELECT count(*) FROM main.{quote_ident(table)}"
            ).fetchall()[0]
            facts[table] = TableFacts(row_count=count, columns=tuple(cols))
    return facts
