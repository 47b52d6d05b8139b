"""Replay dead letters: re-validate them (e.g. after a contract fix) and move passing ones.

Every dead-letter row is identified by where it came from: (``_source``, ``_source_line``,
``_batch_id``); the raw rows a replay writes keep that identity. A replay appends the rows that
now pass and are not yet in the raw table under their identity, then deletes the moved
identities from the dead-letter table. Interrupted between the two commits, the next replay
finds the rows already in raw, writes nothing new and finishes the delete: each record ends up
in the raw table exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from assets_project.lib.contracts import Contract
from assets_project.lib.lake import (
    PARTITION_COLUMN,
    LakeLayout,
    ensure_table,
    lake_connection,
    open_table,
    raw_schema,
    register_delta,
)
from assets_project.lib.validation import (
    LINE_TEXT,
    compile_validation,
    new_connection,
    run_validation,
)

IDENTITY = ("_source", "_source_line", "_batch_id")


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did."""

    examined: int
    now_valid: int
    moved: int
    still_rejected: int


def _not_in_raw(layout: LakeLayout, contract: Contract, ids: pa.Table) -> pa.Array:
    """Per row of ``ids`` (in order): true when the raw table does not hold that identity."""
    raw = open_table(layout.raw_uri(contract.name))
    if raw is None or ids.num_rows == 0:
        return pa.array([True] * ids.num_rows, pa.bool_())
    numbered = ids.append_column("_position", pa.array(range(ids.num_rows), pa.int64()))
    with lake_connection() as connection:
        register_delta(connection, "raw", raw)
        connection.register("ids", numbered)
        result = connection.sql(
            "SELECT ids._position, raw_ids._source IS NULL AS missing FROM ids LEFT JOIN "
            "(SELECT DISTINCT _source, _source_line, _batch_id FROM raw) AS raw_ids "
            "USING (_source, _source_line, _batch_id) ORDER BY ids._position"
        ).to_arrow_table()
    return result["missing"].combine_chunks()


def replay_dead_letters(layout: LakeLayout, contract: Contract) -> ReplayResult:
    """Re-validate the dead letters of ``contract``'s source and move the ones that pass."""
    dlq = open_table(layout.dlq_uri(contract.name))
    if dlq is None:
        return ReplayResult(examined=0, now_valid=0, moved=0, still_rejected=0)
    letters = dlq.to_pyarrow_table(columns=[*IDENTITY, "record"])
    n = letters.num_rows
    # Records are JSON objects (a CSV row as column -> text, or the original JSON line); the
    # validator reads both the way it reads JSON lines. Rows the parser could not split are
    # plain text and stay where they are.
    batch = pa.table(
        {
            "_source_line": pa.array(range(n), pa.int64()),  # position, mapped back below
            LINE_TEXT: pc.fill_null(letters["record"], ""),
        }
    )
    connection = new_connection()
    try:
        valid, _ = run_validation(connection, compile_validation(contract, jsonl=True), batch)
    finally:
        connection.close()
    positions = valid["_source_line"]
    identities = letters.select(list(IDENTITY)).take(positions)
    keep = _not_in_raw(layout, contract, identities)
    to_write = valid.filter(keep)
    ids_to_write = identities.filter(keep)

    extracted_at = datetime.now(UTC).replace(tzinfo=None)
    schema = raw_schema(contract)
    if to_write.num_rows:
        rows = to_write.drop_columns(["_source_line"])
        for name in IDENTITY:
            rows = rows.append_column(name, ids_to_write[name])
        rows = rows.append_column(
            "_extracted_at", pa.array([extracted_at] * rows.num_rows, pa.timestamp("us"))
        )
        rows = rows.append_column(
            PARTITION_COLUMN, contract.partition_dates(rows[contract.partition_by])
        )
        raw = ensure_table(layout.raw_uri(contract.name), schema, [PARTITION_COLUMN])
        write_deltalake(
            raw,
            rows.select(schema.names).cast(schema),
            mode="append",
            partition_by=[PARTITION_COLUMN],
            schema_mode="merge",
        )
    if identities.num_rows:
        dlq.merge(
            source=identities,
            predicate=" AND ".join(f"t.{c} = s.{c}" for c in IDENTITY),
            source_alias="s",
            target_alias="t",
        ).when_matched_delete().execute()
    return ReplayResult(
        examined=n,
        now_valid=valid.num_rows,
        moved=to_write.num_rows,
        still_rejected=n - valid.num_rows,
    )
