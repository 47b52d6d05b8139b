"""Asset checks on the raw tables, generated from each source's contract.

Per source: rows are conserved in the run's batch (records read = raw + dead-letter rows), the
batch's reject rate stays under the contract's thresholds, the batch's volume is as expected,
no key has two different records for one version, ``unique`` columns stay unique across keys,
and the table's columns did not change unexpectedly (schema drift).
"""

from collections.abc import Iterator

import dagster as dg

from assets_project.defs.metadata import metadata_int
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import CONTRACTS, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.quality import (
    BatchCounts,
    Conflicts,
    batch_counts,
    conflicting_versions,
    shared_unique_values,
)


def _specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    key = raw_asset_key(contract.name)
    rate = contract.reject_rate
    volume = contract.expected_volume
    specs = [
        dg.AssetCheckSpec(
            "row_conservation",
            asset=key,
            description="Records read in the run's batch = its rows in raw + in dead-letter "
            "(+ rows an extraction re-read that the lake already held).",
        ),
        dg.AssetCheckSpec(
            "reject_rate",
            asset=key,
            description=f"Share of the run's batch sent to dead-letter: warns above "
            f"{rate.warn_above:.0%}, fails above {rate.fail_above:.0%}.",
        ),
        dg.AssetCheckSpec(
            "batch_volume",
            asset=key,
            description=f"Records in the run's batch within {volume.min_rows}.."
            f"{volume.max_rows or 'any'} (warns otherwise).",
        ),
        dg.AssetCheckSpec(
            "primary_key_versions_unique",
            asset=key,
            description=f"No ({', '.join(contract.primary_key)}"
            f"{', ' + contract.update_time if contract.update_time else ''}) has two "
            "different records.",
        ),
    ]
    specs += [
        dg.AssetCheckSpec(
            f"{column.name}_unique",
            asset=key,
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


def _batch_results(
    contract: Contract,
    key: dg.AssetKey,
    records_read: int,
    counts: BatchCounts,
    batch_id: str,
    which: str,
    already_in_lake: int = 0,
) -> Iterator[dg.AssetCheckResult]:
    """The three per-batch results of batch ``batch_id`` (``which``: how it was chosen)."""
    described = f"Judged {which} ({batch_id})."
    batch_meta = {"batch_id": dg.MetadataValue.text(batch_id)}
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="row_conservation",
        passed=records_read == counts.total + already_in_lake,
        description=described,
        metadata={
            **batch_meta,
            "records_read": records_read,
            "raw_rows": counts.raw,
            "dead_letter_rows": counts.dead_letter,
            "already_in_lake": already_in_lake,
        },
    )
    rate = contract.reject_rate
    over_fail = counts.reject_rate > rate.fail_above
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="reject_rate",
        passed=counts.reject_rate <= rate.warn_above,
        severity=dg.AssetCheckSeverity.ERROR if over_fail else dg.AssetCheckSeverity.WARN,
        description=described,
        metadata={
            **batch_meta,
            "reject_rate": round(counts.reject_rate, 4),
            "rejected": counts.dead_letter,
        },
    )
    volume = contract.expected_volume
    in_range = records_read >= volume.min_rows and (
        volume.max_rows is None or records_read <= volume.max_rows
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="batch_volume",
        passed=in_range,
        severity=dg.AssetCheckSeverity.WARN,
        description=described,
        metadata={**batch_meta, "records": records_read},
    )


def batch_materialization(
    instance: dg.DagsterInstance, run: dg.DagsterRun, key: dg.AssetKey
) -> tuple[dg.EventLogEntry | None, str]:
    """The materialization of ``key`` whose batch the checks of ``run`` judge, and which it is.

    The batch of a run is the materialization of the asset in that run (its batch id is the run
    id, written in ``_batch_id``). A re-execution of a run's checks (e.g. "from failure") has no
    materialization of its own: it judges its parent run's batch, then the grandparent's, up to
    the root. Only a run with no materialization in its lineage (a check-only run launched by
    hand) judges the asset's latest materialization, the one Dagster attaches the evaluation to,
    and says so in the result's description.
    """
    current: dg.DagsterRun | None = run
    while current is not None:
        records = instance.get_records_for_run(
            current.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        mine = [
            r.event_log_entry
            for r in records
            if r.event_log_entry.asset_materialization is not None
            and r.event_log_entry.asset_materialization.asset_key == key
        ]
        if mine:
            if current.run_id == run.run_id:
                return mine[-1], "the batch this run wrote"
            return mine[-1], f"the batch of run {current.run_id}, which this run re-executes"
        parent = current.parent_run_id
        current = instance.get_run_by_id(parent) if parent else None
    latest = instance.get_latest_materialization_event(key)
    return latest, "the latest batch: this run materialized nothing (a check-only run)"


def build_contract_checks(contract: Contract) -> dg.AssetChecksDefinition:
    """The contract checks of one raw asset.

    The batch checks (row conservation, reject rate, volume) judge the batch written by the
    check's own run, never "the latest materialization": the file sensor runs several files of
    one source at once, so another run's materialization may land between this run's asset and
    its checks (see ``batch_materialization``).
    """
    key = raw_asset_key(contract.name)

    @dg.multi_asset_check(
        specs=_specs(contract),
        name=f"{contract.name}_contract_checks",
        description=f"Checks derived from contracts/{contract.name}.yml",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        layout = lake.layout
        entry, which = batch_materialization(context.instance, context.run, key)
        materialization = entry.asset_materialization if entry else None
        records = metadata_int(materialization.metadata, "rows_in") if materialization else None
        if entry is None or materialization is None or not records:
            # No batch with new records: there is nothing to count for the batch checks.
            if entry is None:
                description = "No materialization of the asset yet: no batch to judge."
            else:
                description = f"Judged {which} ({entry.run_id}): it brought no new records."
            for name in ("row_conservation", "reject_rate", "batch_volume"):
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=True,
                    description=description,
                    metadata={"batch_id": entry.run_id if entry else ""},
                )
        else:
            # The batch id written in ``_batch_id`` is the run id of the materializing run.
            counts = batch_counts(layout, contract.name, entry.run_id)
            # A database extraction re-reads an overlap: rows it found in the lake unchanged
            # keep the batch id of the run that wrote them.
            already = metadata_int(materialization.metadata, "rows_already_in_lake")
            yield from _batch_results(
                contract, key, records, counts, entry.run_id, which, already or 0
            )
        yield _conflict_result(
            key, "primary_key_versions_unique", conflicting_versions(layout, contract)
        )
        for column in contract.columns:
            if column.unique:
                conflicts = shared_unique_values(layout, contract, column.name)
                yield _conflict_result(key, f"{column.name}_unique", conflicts)

    return _checks


contract_checks = [build_contract_checks(c) for c in CONTRACTS]
schema_drift_checks = list(
    dg.build_column_schema_change_checks(assets=[raw_asset_key(c.name) for c in CONTRACTS])
)
