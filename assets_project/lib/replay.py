"""Replay dead letters: re-validate them (e.g. after a contract fix) and move passing ones.

Every dead-letter row is identified by where it came from: (``_source``, ``_source_line``,
``_batch_id``); the raw rows a replay writes keep that identity. A replay appends the rows that
now pass and are not yet in the raw table under their identity, then deletes the moved
identities from the dead-letter table.

Exactly once, also when replays run at the same time (two CLI calls, two Dagster runs):

* The raw append carries the Delta app transaction ``replay:<source>`` (see
  :func:`replay_app_id`), and it is committed on the very raw snapshot the "not yet in raw"
  check read. Delta's conflict checker fails a commit whose app id a commit after its read
  snapshot also carries (``ConcurrentTransaction``): of two replays that both found a record
  missing from raw, only the first to commit appends it; the other's commit fails, and it
  starts over from fresh snapshots, where it finds the record in raw.
* The dead-letter delete (of every record that passes now: moved by this replay or found in
  raw) runs on the dead-letter table's newest snapshot and rewrites the files holding those
  rows; when a concurrent commit also rewrote them (another replay's delete,
  ``ConcurrentDeleteDelete``) it fails instead of writing the surviving rows back a second
  time, and is retried on its own: the rows it deletes are in raw either way. It carries the
  same app transaction.
* Interrupted between the two commits (a crash, kill -9), the next replay finds the rows
  already in raw under their identity, writes nothing new and finishes the delete.

The delta-rs conflict checker (``check_for_updated_application_transaction_ids_that_current_
txn_depends_on``) counts the app ids of a commit's own ``txn`` actions as read, which is what
makes two appends with the same app id conflict. Each step is tried at most
:data:`REPLAY_ATTEMPTS` times.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from assets_project.lib.batches import extraction_time, with_lake_metadata
from assets_project.lib.contracts import Contract
from assets_project.lib.failpoints import failpoint
from assets_project.lib.lake import (
    PARTITION_COLUMN,
    LakeLayout,
    delta_table,
    ensure_table,
    lake_connection,
    open_table,
    raw_schema,
    register_delta,
)
from assets_project.lib.readers import int_range
from assets_project.lib.validation import (
    LINE_TEXT,
    compile_validation,
    new_connection,
    run_validation,
)

T = TypeVar("T")

IDENTITY = ("_source", "_source_line", "_batch_id")
REPLAY_ATTEMPTS = 8
"""How many times each step of a replay (raw append, dead-letter delete) is tried while it
loses its commit race to concurrent writers."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did.

    ``examined = moved + already_in_raw + still_rejected``: a record that passes now is either
    appended to raw (``moved``) or was appended by an earlier replay that died before its
    dead-letter delete (``already_in_raw``); both leave the dead-letter table.
    """

    examined: int
    now_valid: int
    moved: int
    still_rejected: int
    already_in_raw: int = 0
    attempts: int = 1
    """Commits tried: 1 + the commit races lost (and retried) to concurrent writers."""
    batches: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per original ``_batch_id`` of the examined records: examined, moved, still_rejected."""


class ReplayConflictError(RuntimeError):
    """Every attempt of a replay lost its commit race to a concurrent writer."""


def replay_app_id(source: str) -> str:
    """The Delta app transaction id every replay of ``source`` commits with."""
    return f"replay:{source}"


def _not_in_raw(raw: DeltaTable, ids: pa.Table) -> pa.Array:
    """Per row of ``ids`` (in order): true when ``raw``'s snapshot does not hold that identity."""
    if ids.num_rows == 0:
        return pa.array([True] * ids.num_rows, pa.bool_())
    numbered = ids.append_column("_position", int_range(0, ids.num_rows))
    with lake_connection() as connection:
        register_delta(connection, "raw", raw)
        connection.register("ids", numbered)
        result = connection.sql(
            "SELECT ids._position, raw_ids._source IS NULL AS missing FROM ids LEFT JOIN "
            "(SELECT DISTINCT _source, _source_line, _batch_id FROM raw) AS raw_ids "
            "USING (_source, _source_line, _batch_id) ORDER BY ids._position"
        ).to_arrow_table()
    return result["missing"].combine_chunks()


def _per_batch(letters: pa.Table, valid_ids: pa.Table, moved_ids: pa.Table) -> dict:
    """examined / moved / still_rejected per original batch id."""
    examined = pc.value_counts(letters["_batch_id"]).to_pylist()
    valid = dict(
        (v["values"], v["counts"]) for v in pc.value_counts(valid_ids["_batch_id"]).to_pylist()
    )
    moved = dict(
        (v["values"], v["counts"]) for v in pc.value_counts(moved_ids["_batch_id"]).to_pylist()
    )
    return {
        v["values"]: {
            "examined": v["counts"],
            "moved": moved.get(v["values"], 0),
            "still_rejected": v["counts"] - valid.get(v["values"], 0),
        }
        for v in sorted(examined, key=lambda v: v["values"])
    }


@dataclass(frozen=True)
class _Moved:
    """The outcome of the raw step: the counts, and what the dead-letter delete removes."""

    result: ReplayResult
    passed: pa.Table  # identities of every record that passes now (moved or already in raw)
    commit: CommitProperties


def _move_to_raw(
    layout: LakeLayout,
    contract: Contract,
    run_id: str | None,
) -> _Moved | None:
    """Append the records that pass now and are not in raw yet, in one raw commit.

    Raises CommitFailedError when a concurrent replay committed to raw after the snapshot the
    "not in raw" check read; None when there is no dead-letter table.
    """
    dlq = open_table(layout.dlq_uri(contract.name))
    if dlq is None:
        return None
    schema = raw_schema(contract)
    # The raw snapshot that the "already in raw" check reads is the one the append commits on:
    # a replay that committed after it is a conflict, not an unseen duplicate.
    raw = ensure_table(layout.raw_uri(contract.name), schema, [PARTITION_COLUMN])
    letters = dlq.to_pyarrow_table(columns=[*IDENTITY, "record"])
    n = letters.num_rows
    # Records are JSON objects (a CSV row as column -> text, or the original JSON line); the
    # validator reads both the way it reads JSON lines. Rows the parser could not split are
    # plain text and stay where they are.
    batch = pa.table(
        {
            "_source_line": int_range(0, n),  # position, mapped back below
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
    keep = _not_in_raw(raw, identities)
    to_write = valid.filter(keep)
    ids_to_write = identities.filter(keep)

    app_id = replay_app_id(contract.name)
    metadata = {"replay_of": f"dlq/{contract.name}", "dlq_version": str(dlq.version())}
    if run_id:
        metadata["batch_id"] = run_id
    commit = CommitProperties(
        app_transactions=[Transaction(app_id, (raw.transaction_version(app_id) or 0) + 1)],
        custom_metadata=metadata,
    )
    failpoint("replay.checked")
    if to_write.num_rows:
        # The rows keep the identity of their dead letter (source, line, original batch).
        rows = with_lake_metadata(
            to_write,
            contract,
            schema,
            source=ids_to_write["_source"],
            batch_id=ids_to_write["_batch_id"],
            extracted_at=extraction_time(),
            source_lines=ids_to_write["_source_line"],
        )
        write_deltalake(
            raw,
            rows,
            mode="append",
            partition_by=[PARTITION_COLUMN],
            schema_mode="merge",
            commit_properties=commit,
        )
    failpoint("replay.raw_committed")
    result = ReplayResult(
        examined=n,
        now_valid=valid.num_rows,
        moved=to_write.num_rows,
        still_rejected=n - valid.num_rows,
        already_in_raw=valid.num_rows - to_write.num_rows,
        batches=_per_batch(letters, identities, ids_to_write),
    )
    return _Moved(result=result, passed=identities, commit=commit)


def _delete_from_dead_letter(layout: LakeLayout, contract: Contract, moved: _Moved) -> None:
    """Delete the records now in raw from the dead-letter table's newest snapshot.

    Raises CommitFailedError when a concurrent commit rewrote the files this delete rewrites
    (another replay deleting the same rows): retried, the delete finds what is left.
    """
    if moved.passed.num_rows:
        delta_table(layout.dlq_uri(contract.name)).merge(
            source=moved.passed,
            predicate=" AND ".join(f"t.{c} = s.{c}" for c in IDENTITY),
            source_alias="s",
            target_alias="t",
            commit_properties=moved.commit,
        ).when_matched_delete().execute()


def replay_dead_letters(
    layout: LakeLayout,
    contract: Contract,
    *,
    run_id: str | None = None,
    attempts: int = REPLAY_ATTEMPTS,
) -> ReplayResult:
    """Re-validate the dead letters of ``contract``'s source and move the ones that pass.

    Safe to run concurrently with other replays of the source and with its ingestion: each
    record ends up in the raw table once. ``run_id`` (the Dagster run) goes into the commits'
    metadata. Each step boundary is a failpoint (``replay.checked``: the records to move are
    known, nothing committed; ``replay.raw_committed``; ``replay.dead_letter_committed``, see
    :mod:`assets_project.lib.failpoints`); tests kill the process or interleave another replay
    there. Raises
    :class:`ReplayConflictError` when every attempt lost a commit race.

    A raw commit that loses its race starts the replay over on fresh snapshots; a dead-letter
    delete that loses its race is retried on its own (the rows it deletes are in raw either
    way). ``attempts`` bounds the tries of each of the two steps.
    """
    moved, raw_tries = _retrying(
        lambda: _move_to_raw(layout, contract, run_id), contract, "raw", attempts
    )
    if moved is None:
        return ReplayResult(examined=0, now_valid=0, moved=0, still_rejected=0)
    _, delete_tries = _retrying(
        lambda: _delete_from_dead_letter(layout, contract, moved),
        contract,
        "dead-letter",
        attempts,
    )
    failpoint("replay.dead_letter_committed")
    return replace(moved.result, attempts=raw_tries + delete_tries - 1)


def _retrying(
    step: Callable[[], T], contract: Contract, table: str, attempts: int
) -> tuple[T, int]:
    """Run ``step`` until it does not lose a commit race; returns its value and the tries."""
    for attempt in range(1, attempts + 1):
        try:
            return step(), attempt
        except CommitFailedError as exc:
            log.info(
                "%s: the replay's %s commit lost a race (%s); trying again",
                contract.name,
                table,
                str(exc).splitlines()[0],
            )
            # Desynchronize from the writer that won, so the next try is not a rerun of the race.
            time.sleep(random.uniform(0.0, 0.05 * attempt))
    raise ReplayConflictError(
        f"{contract.name}: the dead-letter replay's {table} commit lost its race {attempts} "
        "times in a row to concurrent writers; run the replay again"
    )
