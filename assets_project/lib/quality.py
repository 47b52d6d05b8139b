"""Data-quality facts about the raw and dead-letter Delta tables, computed with DuckDB.

The tables are handed to DuckDB as Arrow datasets, so filters (a batch id) are pushed down
into the Parquet scan and nothing touches the warehouse file.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from assets_project.lib.contracts import Contract
from assets_project.lib.lake import LakeLayout, lake_connection, open_table, register_delta
from assets_project.lib.validation import quote_ident

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


def _connection(layout: LakeLayout, source: str, *, dlq: bool = False) -> duckdb.DuckDBPyConnection:
    connection = lake_connection()
    for name, uri in (("raw", layout.raw_uri(source)), ("dlq", layout.dlq_uri(source))):
        if name == "dlq" and not dlq:
            continue
        table = open_table(uri)
        if table is None:
            connection.execute(f"CREATE TABLE {name} (_batch_id VARCHAR)")
        else:
            register_delta(connection, name, table)
    return connection


def batch_counts(layout: LakeLayout, source: str, batch_id: str) -> BatchCounts:
    """Rows that batch ``batch_id`` left in the raw and in the dead-letter table."""
    with _connection(layout, source, dlq=True) as connection:
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
    with _connection(layout, source, dlq=True) as connection:
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
    with _connection(layout, source, dlq=True) as connection:
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


def conflicting_versions(layout: LakeLayout, contract: Contract) -> Conflicts:
    """Primary keys with two different records for the same version.

    Raw tables are append-only, so a key legitimately appears once per version and exact
    duplicates are harmless; two *different* records under one key and version are not.
    """
    key = [quote_ident(k) for k in contract.primary_key]
    if contract.update_time:
        key.append(quote_ident(contract.update_time))
    payload = ", ".join(quote_ident(c.name) for c in contract.columns)
    sql = (
        f"SELECT {', '.join(key)}, count(DISTINCT hash({payload})) AS records FROM raw "
        f"GROUP BY ALL HAVING count(DISTINCT hash({payload})) > 1"
    )
    return _conflicts(layout, contract.name, sql)


def shared_unique_values(layout: LakeLayout, contract: Contract, column: str) -> Conflicts:
    """Values of a ``unique`` column that belong to more than one primary key."""
    key = ", ".join(quote_ident(k) for k in contract.primary_key)
    target = quote_ident(column)
    sql = (
        f"SELECT {target}, count(DISTINCT hash({key})) AS keys FROM raw "
        f"WHERE {target} IS NOT NULL GROUP BY {target} HAVING count(DISTINCT hash({key})) > 1"
    )
    return _conflicts(layout, contract.name, sql)


def _conflicts(layout: LakeLayout, source: str, sql: str) -> Conflicts:
    if open_table(layout.raw_uri(source)) is None:
        return Conflicts(count=0, examples=[])
    with _connection(layout, source) as connection:
        relation = connection.sql(f"SELECT * FROM ({sql})")
        (count,) = connection.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0]
        rows = relation.limit(EXAMPLES).fetchall()
        examples: list[dict[str, object]] = [
            {name: str(value) for name, value in zip(relation.columns, row, strict=True)}
            for row in rows
        ]
    return Conflicts(count=count, examples=examples)
