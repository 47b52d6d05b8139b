"""Asset checks on the raw tables, generated from each source's contract.

Per source: rows are conserved in the last batch (records read = raw + dead-letter rows), the
batch's reject rate stays under the contract's thresholds, the batch's volume is as expected,
no key has two different records for one version, ``unique`` columns stay unique across keys,
and the table's columns did not change unexpectedly (schema drift).
"""

from collections.abc import Iterator

import dagster as dg

from assets_project.defs.ingestion.files import CONTRACTS, raw_asset_key
from assets_project.defs.resources import LakeResource
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
            description="Records read in the last batch = its rows in raw + in dead-letter "
            "(+ rows an extraction re-read that the lake already held).",
        ),
        dg.AssetCheckSpec(
            "reject_rate",
            asset=key,
            description=f"Share of the last batch sent to dead-letter: warns above "
            f"{rate.warn_above:.0%}, fails above {rate.fail_above:.0%}.",
        ),
        dg.AssetCheckSpec(
            "batch_volume",
            asset=key,
            description=f"Records in the last batch within {volume.min_rows}.."
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
    already_in_lake: int = 0,
) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="row_conservation",
        passed=records_read == counts.total + already_in_lake,
        metadata={
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
        metadata={"reject_rate": round(counts.reject_rate, 4), "rejected": counts.dead_letter},
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
        metadata={"records": records_read},
    )


def build_contract_checks(contract: Contract) -> dg.AssetChecksDefinition:
    """The contract checks of one raw asset."""
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
        latest = context.instance.get_latest_materialization_event(key)
        materialization = latest.asset_materialization if latest else None
        records = materialization.metadata.get("rows_in") if materialization else None
        if latest is None or records is None or not records.value:
            # No batch with new records: there is nothing to count for the batch checks.
            for name in ("row_conservation", "reject_rate", "batch_volume"):
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=True,
                    description="The last materialization brought no new records.",
                )
        else:
            counts = batch_counts(layout, contract.name, latest.run_id)
            # A database extraction re-reads an overlap: rows it found in the lake unchanged
            # keep the batch id of the run that wrote them.
            already = materialization.metadata.get("rows_already_in_lake")
            yield from _batch_results(
                contract, key, int(records.value), counts, int(already.value) if already else 0
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
