"""Asset checks on the raw tables, generated from each source's contract.

Per source: rows are conserved in the batch the check's run wrote (records read = raw +
dead-letter rows), that batch's reject rate stays under the contract's thresholds, its volume is
as expected, no key has two different records for one version, ``unique`` columns stay unique
across keys, and the table's columns did not change unexpectedly (schema drift).

Every check that fails with ERROR severity is blocking (all but ``batch_volume``, a WARN): in a
run, Dagster then skips the assets downstream of the raw table, and the marts' automation and
schedule wait until the check passes again (see :mod:`assets_project.defs.dbt.gate`).

The three batch checks judge the materialization of their own run (the batch id is the run
id), never the asset's latest one: the file sensor runs several files of one source at once.
See :func:`judged_batch` for re-executions and check-only runs, and :func:`_replay_results`
for a dead-letter replay.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from assets_project.defs.metadata import Metadata, metadata_int
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import CONTRACTS, REPLAY_CHANNEL, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.lake import LakeLayout
from assets_project.lib.quality import (
    BatchCounts,
    Conflicts,
    batch_counts,
    batches_counts,
    conflicting_versions,
    duplicated_records,
    shared_unique_values,
)

BATCH_CHECKS = ("row_conservation", "reject_rate", "reject_rate_warning", "batch_volume")


def _specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    key = raw_asset_key(contract.name)
    rate = contract.reject_rate
    volume = contract.expected_volume
    specs = [
        dg.AssetCheckSpec(
            "row_conservation",
            asset=key,
            blocking=True,
            description="Records read in this run's batch = its rows in raw + in dead-letter "
            "(+ rows an extraction re-read that the lake already held); for a replay, every "
            "replayed batch still holds each record it read, once.",
        ),
        dg.AssetCheckSpec(
            "reject_rate",
            asset=key,
            blocking=True,
            description="Share of this run's batch (of the replayed batches, for a replay) sent "
            f"to dead-letter: fails (ERROR, blocking) above {rate.fail_above:.0%}.",
        ),
        dg.AssetCheckSpec(
            "reject_rate_warning",
            asset=key,
            description=f"The same share: warns (WARN, not blocking) above {rate.warn_above:.0%}.",
        ),
        dg.AssetCheckSpec(
            "batch_volume",
            asset=key,
            description=f"Records in this run's batch within {volume.min_rows}.."
            f"{volume.max_rows or 'any'} (warns otherwise).",
        ),
        dg.AssetCheckSpec(
            "primary_key_versions_unique",
            asset=key,
            blocking=True,
            description=f"No ({', '.join(contract.primary_key)}"
            f"{', ' + contract.update_time if contract.update_time else ''}) has two "
            "different records.",
        ),
    ]
    specs += [
        dg.AssetCheckSpec(
            f"{column.name}_unique",
            asset=key,
            blocking=True,
            description=f"No {column.name} belongs to two different keys.",
        )
        for column in contract.columns
        if column.unique
    ]
    return specs


def _conflict_result(key: dg.AssetKey, name: str, conflicts: Conflicts) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=conflicts.count == 0,
        metadata={
            "conflicts": conflicts.count,
            "examples": dg.MetadataValue.json(conflicts.examples),
        },
    )


@dataclass(frozen=True)
class JudgedBatch:
    """The materialization a run's batch checks judge, and where it was found."""

    batch_id: str
    """The run that wrote the batch: rows carry it as ``_batch_id``."""
    materialization: dg.AssetMaterialization
    found: str
    """``this run``, ``parent run`` (a re-execution of the checks only) or ``latest
    materialization`` (a check-only run: nothing of the batch lineage wrote the asset)."""

    def value(self, name: str) -> object:
        entry = self.materialization.metadata.get(name)
        return entry.value if entry is not None else None

    def count(self, name: str) -> int:
        """The number stored under ``name`` (0 when there is none)."""
        return metadata_int(self.materialization.metadata, name) or 0


def materialization_in_run(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey
) -> dg.AssetMaterialization | None:
    """The last materialization of ``key`` that run ``run_id`` stored, if any."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for entry in reversed(entries):
        materialization = entry.asset_materialization
        if materialization is not None and materialization.asset_key == key:
            return materialization
    return None


def judged_batch(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> JudgedBatch | None:
    """The batch the checks of this run judge: the one this run wrote.

    The sensor runs several files of one source at once, so the asset's latest
    materialization may be another run's; the checks read their own run's instead. A
    re-execution of the checks alone (e.g. after they crashed) judges the batch of the run it
    re-executes (its parent runs). A check-only run (launched from the UI on the asset, with
    no materialization in its lineage) judges the latest materialization, which is also the
    one Dagster attaches its evaluation to, and says so in each result.
    """
    instance = context.instance
    run: dg.DagsterRun | None = context.run
    while run is not None:
        materialization = materialization_in_run(instance, run.run_id, key)
        if materialization is not None:
            found = "this run" if run.run_id == context.run.run_id else "parent run"
            return JudgedBatch(run.run_id, materialization, found)
        run = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id else None
    latest = instance.get_latest_materialization_event(key)
    if latest is None or latest.asset_materialization is None:
        return None
    return JudgedBatch(latest.run_id, latest.asset_materialization, "latest materialization")


def _passing(key: dg.AssetKey, description: str, **metadata: Any) -> Iterator[dg.AssetCheckResult]:
    for name in BATCH_CHECKS:
        yield dg.AssetCheckResult(
            asset_key=key, check_name=name, passed=True, description=description, metadata=metadata
        )


def _batch_results(
    contract: Contract,
    key: dg.AssetKey,
    records_read: int,
    counts: BatchCounts,
    already_in_lake: int,
    about: Metadata,
    description: str | None,
) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="row_conservation",
        passed=records_read == counts.total + already_in_lake,
        description=description,
        metadata={
            **about,
            "records_read": records_read,
            "raw_rows": counts.raw,
            "dead_letter_rows": counts.dead_letter,
            "already_in_lake": already_in_lake,
        },
    )
    yield from _reject_rate_result(contract, key, counts, about, description)
    volume = contract.expected_volume
    in_range = records_read >= volume.min_rows and (
        volume.max_rows is None or records_read <= volume.max_rows
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="batch_volume",
        passed=in_range,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={**about, "records": records_read},
    )


def _reject_rate_result(
    contract: Contract,
    key: dg.AssetKey,
    counts: BatchCounts,
    about: Metadata,
    description: str | None,
) -> Iterator[dg.AssetCheckResult]:
    """``reject_rate`` (the contract's fail threshold, ERROR, blocking) and
    ``reject_rate_warning`` (its warn threshold, WARN): two checks, so that a warning never
    holds the marts (the gate sees that a blocking check failed, not with which severity)."""
    rate = contract.reject_rate
    metadata = {
        **about,
        "reject_rate": round(counts.reject_rate, 4),
        "rejected": counts.dead_letter,
    }
    for name, threshold, severity in (
        ("reject_rate", rate.fail_above, dg.AssetCheckSeverity.ERROR),
        ("reject_rate_warning", rate.warn_above, dg.AssetCheckSeverity.WARN),
    ):
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=counts.reject_rate <= threshold,
            severity=severity,
            description=description,
            metadata={**metadata, "threshold": threshold},
        )


def _replay_results(
    context: dg.AssetCheckExecutionContext,
    contract: Contract,
    key: dg.AssetKey,
    layout: LakeLayout,
    batch: JudgedBatch,
    about: Metadata,
    description: str | None,
) -> Iterator[dg.AssetCheckResult]:
    """The batch checks of a dead-letter replay (``channel: replay``).

    A replay writes no batch of its own: the records it moves keep the ``_batch_id`` of the
    run that first read them. So its checks judge the batches it replayed:

    * ``row_conservation``: examined = moved + already in raw + still rejected (per batch too),
      and in the lake each replayed batch still holds what its ingestion run read
      (raw + dead-letter rows = that run's ``rows_in`` - ``rows_already_in_lake``, when the run
      is in this instance), with no record held twice across raw and dead-letter.
    * ``reject_rate``: the dead-letter share of the replayed batches now, against the
      contract's thresholds (a replay after a contract fix turns a red reject rate green).
    * ``batch_volume``: passes; a replay brings no new records to count.
    """
    examined = batch.count("rows_in")
    moved = batch.count("rows_written")
    still = batch.count("rows_rejected")
    already_in_raw = batch.count("rows_already_in_raw")
    listed = batch.value("replayed_batches")
    replayed: dict[str, dict[str, int]] = listed if isinstance(listed, dict) else {}
    batch_ids = sorted(replayed)
    counts = batches_counts(layout, contract.name, batch_ids)
    unbalanced: dict[str, dict[str, int]] = {}
    unverified: list[str] = []
    for batch_id in batch_ids:
        original = materialization_in_run(context.instance, batch_id, key)
        rows_in = metadata_int(original.metadata, "rows_in") if original is not None else None
        if original is None or rows_in is None:
            unverified.append(batch_id)
            continue
        expected = rows_in - (metadata_int(original.metadata, "rows_already_in_lake") or 0)
        if counts[batch_id].total != expected:
            unbalanced[batch_id] = {"expected_rows": expected, "rows_now": counts[batch_id].total}
    duplicates = duplicated_records(layout, contract.name, batch_ids)
    # Per batch, the rest of examined (neither moved nor still rejected) was already in raw.
    per_batch_balanced = all(
        0 <= b["moved"] + b["still_rejected"] <= b["examined"] for b in replayed.values()
    )
    balanced = (
        examined == moved + already_in_raw + still
        and sum(b["examined"] for b in replayed.values()) == examined
        and sum(b["moved"] for b in replayed.values()) == moved
        and sum(b["still_rejected"] for b in replayed.values()) == still
        and per_batch_balanced
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="row_conservation",
        passed=balanced and not unbalanced and duplicates == 0,
        description=description
        or "Replay: examined = moved + already in raw + still rejected; each replayed batch "
        "still holds the records its ingestion run read, each once.",
        metadata={
            **about,
            "examined": examined,
            "moved": moved,
            "already_in_raw": already_in_raw,
            "still_rejected": still,
            "replayed_batches": len(batch_ids),
            "unbalanced_batches": dg.MetadataValue.json(unbalanced),
            "unverified_batches": dg.MetadataValue.json(unverified),
            "duplicated_records": duplicates,
        },
    )
    total = BatchCounts(
        raw=sum(c.raw for c in counts.values()),
        dead_letter=sum(c.dead_letter for c in counts.values()),
    )
    yield from _reject_rate_result(
        contract,
        key,
        total,
        about,
        description or f"Replay: dead-letter share of the {len(batch_ids)} replayed batch(es) now.",
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="batch_volume",
        passed=True,
        description=description or "Replay: no new records (volume is judged on ingestion).",
        metadata={**about, "examined": examined},
    )


def _batch_checks(
    context: dg.AssetCheckExecutionContext,
    contract: Contract,
    key: dg.AssetKey,
    layout: LakeLayout,
    batch: JudgedBatch | None,
) -> Iterator[dg.AssetCheckResult]:
    if batch is None:
        yield from _passing(key, "The asset was never materialized: no batch to judge.")
        return
    about: Metadata = {"batch_id": batch.batch_id, "judged": batch.found}
    description = (
        f"Check-only run: judged the latest materialization's batch (run {batch.batch_id}); "
        "no run in this run's lineage materialized the asset."
        if batch.found == "latest materialization"
        else None
    )
    if batch.value("channel") == REPLAY_CHANNEL:
        yield from _replay_results(context, contract, key, layout, batch, about, description)
        return
    records = batch.count("rows_in")
    if not records:
        yield from _passing(key, description or "The batch brought no new records.", **about)
        return
    counts = batch_counts(layout, contract.name, batch.batch_id)
    # A database extraction re-reads an overlap: rows it found in the lake unchanged keep the
    # batch id of the run that wrote them.
    already = batch.count("rows_already_in_lake")
    yield from _batch_results(contract, key, records, counts, already, about, description)


def build_contract_checks(contract: Contract) -> dg.AssetChecksDefinition:
    """The contract checks of one raw asset."""
    key = raw_asset_key(contract.name)

    @dg.multi_asset_check(
        specs=_specs(contract),
        name=f"{contract.name}_contract_checks",
        description=f"Checks derived from contracts/raw/{contract.name}.odcs.yaml",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        layout = lake.layout
        batch = judged_batch(context, key)
        yield from _batch_checks(context, contract, key, layout, batch)
        # The uniqueness rules look at the keys and values the judged batch wrote (a conflict
        # needs one of its records); a replay (rows of several batches) or no batch: all.
        scope = (
            batch.batch_id
            if batch is not None and batch.value("channel") != REPLAY_CHANNEL
            else None
        )
        yield _conflict_result(
            key, "primary_key_versions_unique", conflicting_versions(layout, contract, scope)
        )
        for column in contract.columns:
            if column.unique:
                conflicts = shared_unique_values(layout, contract, column.name, scope)
                yield _conflict_result(key, f"{column.name}_unique", conflicts)

    return _checks


contract_checks = [build_contract_checks(c) for c in CONTRACTS]
schema_drift_checks = list(
    dg.build_column_schema_change_checks(assets=[raw_asset_key(c.name) for c in CONTRACTS])
)
