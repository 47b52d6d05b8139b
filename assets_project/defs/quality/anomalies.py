"""Volume and null-rate anomaly checks, open source (Dagster's own are Dagster+ only).

Per raw asset, judged on the batch of the check's own run (:func:`judged_batch`) against the
trailing history of the asset's materializations in the Dagster instance (their metadata, no
side file), with the robust statistics of :mod:`assets_project.lib.anomaly`:

* ``volume_anomaly``: the batch's record count against earlier batches' (WARN); a batch of zero
  records is an ERROR.
* ``<column>_null_rate``: per contract column, the share of the batch's records without a value
  against earlier batches' shares (WARN). Required columns count the records rejected for
  the missing value, nullable ones the nulls in the raw table.
* ``source_stopped``: no batch for several times the source's usual interval (ERROR). It runs
  with every ingestion and on the monitoring schedule (:mod:`.freshness`), which is what catches
  a source that stopped.

Per mart, ``row_count_day_over_day``: the row count of this run's materialization against the
last one of an earlier day (WARN beyond a change of half).

Each judges the materialization of its own run; a dead-letter replay is no new batch and
passes. None of them is blocking: they are verdicts for a person to look at.
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.metadata import NULL_COUNTS, metadata_int
from assets_project.defs.quality.checks import JudgedBatch, judged_batch
from assets_project.defs.sources import CONTRACTS, REPLAY_CHANNEL, raw_asset_key
from assets_project.lib.anomaly import (
    MIN_HISTORY,
    Verdict,
    day_over_day_verdict,
    null_rate_verdict,
    stopped_verdict,
    volume_verdict,
)
from assets_project.lib.contracts import Contract

HISTORY = 30
"""Earlier materializations a check looks back on."""
_SEVERITY = {"WARN": dg.AssetCheckSeverity.WARN, "ERROR": dg.AssetCheckSeverity.ERROR}


def verdict_result(
    key: dg.AssetKey, name: str, verdict: Verdict, **about: Any
) -> dg.AssetCheckResult:
    """The check result of ``verdict``: its reason as description, its numbers as metadata."""
    numbers = {k: v for k, v in verdict.numbers.items() if v is not None}
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=verdict.passed,
        severity=_SEVERITY[verdict.severity],
        description=verdict.reason,
        metadata={**about, **numbers},
    )


def earlier_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str | None, limit: int = HISTORY
) -> list[dg.EventLogRecord]:
    """Up to ``limit`` materializations of ``key`` before the one run ``run_id`` wrote (newest
    first); with ``run_id`` None, the latest ``limit``. Replays are left out: no new batch."""
    records = instance.fetch_materializations(key, limit=limit + 1).records
    if run_id is not None:
        index = next((i for i, r in enumerate(records) if r.run_id == run_id), None)
        records = records[index + 1 :] if index is not None else []
    return [r for r in records if _channel(r) != REPLAY_CHANNEL][:limit]


def _metadata(record: dg.EventLogRecord) -> Mapping[str, dg.MetadataValue]:
    materialization = record.asset_materialization
    return materialization.metadata if materialization is not None else {}


def _channel(record: dg.EventLogRecord) -> object:
    entry = _metadata(record).get("channel")
    return entry.value if entry is not None else None


def _null_counts(metadata: Mapping[str, dg.MetadataValue]) -> tuple[int, dict[str, int]] | None:
    entry = metadata.get(NULL_COUNTS)
    value = entry.value if entry is not None else None
    if not isinstance(value, dict) or not isinstance(value.get("columns"), dict):
        return None
    return int(value.get("rows", 0)), {str(k): int(v) for k, v in value["columns"].items()}


def _anomaly_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    key = raw_asset_key(contract.name)
    return [
        dg.AssetCheckSpec(
            "volume_anomaly",
            asset=key,
            description="Records in this run's batch against the median and MAD of the last "
            f"{HISTORY} batches (warns far off it, once {MIN_HISTORY} are known); zero "
            "records fails with ERROR.",
        ),
        *(
            dg.AssetCheckSpec(
                f"{column.name}_null_rate",
                asset=key,
                description=f"Share of this run's batch without a {column.name} "
                f"({'rejected for it' if column.required else 'null in raw'}) against the "
                f"median and MAD of the last {HISTORY} batches (warns far off it).",
            )
            for column in contract.columns
        ),
    ]


def _passing_all(
    contract: Contract, key: dg.AssetKey, reason: str, about: dict[str, Any]
) -> Iterator[dg.AssetCheckResult]:
    for spec in _anomaly_specs(contract):
        yield dg.AssetCheckResult(
            asset_key=key, check_name=spec.name, passed=True, description=reason, metadata=about
        )


def build_anomaly_checks(contract: Contract) -> dg.AssetChecksDefinition:
    """The volume and null-rate anomaly checks of one raw asset."""
    key = raw_asset_key(contract.name)

    @dg.multi_asset_check(
        specs=_anomaly_specs(contract),
        name=f"{contract.name}_anomaly_checks",
        description=f"This run's batch of {contract.name} against the asset's history.",
    )
    def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        batch = judged_batch(context, key)
        if batch is None:
            yield from _passing_all(contract, key, "Never materialized: no batch to judge.", {})
            return
        about: dict[str, Any] = {"batch_id": batch.batch_id, "judged": batch.found}
        if batch.value("channel") == REPLAY_CHANNEL:
            yield from _passing_all(contract, key, "A replay brings no new batch.", about)
            return
        history = [
            _metadata(r) for r in earlier_materializations(context.instance, key, batch.batch_id)
        ]
        rows = batch.count("rows_in")
        if rows == 0 and batch.value("files_already_ingested"):
            yield from _passing_all(
                contract, key, "The files' content was already in the lake: no new batch.", about
            )
            return
        if rows == 0 and not _read_a_file(batch):
            # A run that found nothing to read (no file waiting, nothing new in the database or
            # the topic) brought no batch; a source that goes quiet is source_stopped's verdict.
            yield from _passing_all(contract, key, "No new records arrived: no batch.", about)
            return
        volumes = [n for m in history if (n := metadata_int(m, "rows_in"))]
        yield verdict_result(key, "volume_anomaly", volume_verdict(rows, volumes), **about)
        yield from _null_rate_results(contract, key, batch.materialization.metadata, history, about)

    return _checks


def _read_a_file(batch: JudgedBatch) -> bool:
    """Whether the batch's run read a dropped file (an empty one is a batch of zero rows)."""
    files = batch.value("files")
    return batch.value("channel") == "files" and isinstance(files, list) and bool(files)


def _null_rate_results(
    contract: Contract,
    key: dg.AssetKey,
    metadata: Mapping[str, dg.MetadataValue],
    history: Sequence[Mapping[str, dg.MetadataValue]],
    about: dict[str, Any],
) -> Iterator[dg.AssetCheckResult]:
    counted = _null_counts(metadata)
    earlier = [c for m in history if (c := _null_counts(m)) is not None and c[0] > 0]
    for column in contract.columns:
        name = f"{column.name}_null_rate"
        if counted is None:
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=True,
                description="The materialization carries no null counts: nothing to judge.",
                metadata=about,
            )
            continue
        rows, nulls = counted
        rates = [n.get(column.name, 0) / r for r, n in earlier]
        verdict = null_rate_verdict(nulls.get(column.name, 0), rows, rates)
        yield verdict_result(key, name, verdict, **about, records=rows)


def build_source_stopped_check(contract: Contract) -> dg.AssetChecksDefinition:
    """ERROR when ``contract``'s source has sent nothing for several of its usual intervals."""
    key = raw_asset_key(contract.name)

    @dg.asset_check(
        asset=key,
        name="source_stopped",
        description="Time since the last batch against the median interval between the last "
        f"{HISTORY} batches: fails with ERROR beyond 3 of them (once {MIN_HISTORY} intervals "
        "are known).",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        records = earlier_materializations(context.instance, key, None)
        verdict = stopped_verdict([r.timestamp for r in records], time.time())
        return verdict_result(key, "source_stopped", verdict)

    return _check


def _mart_keys() -> list[dg.AssetKey]:
    return sorted(
        (s.key for s in shop_dbt_models.specs if s.group_name == "marts"),
        key=lambda k: k.to_user_string(),
    )


def _day(record: dg.EventLogRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp, tz=UTC)


def build_day_over_day_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """WARN when a mart's row count moved by more than half since an earlier day."""

    @dg.asset_check(
        asset=key,
        name="row_count_day_over_day",
        description="Rows in this run's materialization against the last materialization of an "
        "earlier day (UTC): warns when it changed by more than half.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        batch = judged_batch(context, key)
        if batch is None:
            return dg.AssetCheckResult(
                passed=True, description="Never materialized: nothing to compare."
            )
        rows = batch.count("dagster/row_count")
        records = context.instance.fetch_materializations(key, limit=HISTORY * 10).records
        judged = next((r for r in records if r.run_id == batch.batch_id), None)
        previous = None
        if judged is not None:
            today = _day(judged).date()
            earlier = (r for r in records if r.storage_id < judged.storage_id)
            found = next((r for r in earlier if _day(r).date() < today), None)
            previous = metadata_int(_metadata(found), "dagster/row_count") if found else None
        verdict = day_over_day_verdict(rows, previous)
        return verdict_result(key, "row_count_day_over_day", verdict, batch_id=batch.batch_id)

    return _check


anomaly_checks = [build_anomaly_checks(c) for c in CONTRACTS]
source_stopped_checks = [build_source_stopped_check(c) for c in CONTRACTS]
mart_day_over_day_checks = [build_day_over_day_check(k) for k in _mart_keys()]
