"""Lake maintenance as assets: one per source, over its raw and dead-letter Delta tables.

Why assets and not a plain job: each table's maintenance has its own materialization history
(files, bytes, versions and duration before and after, plotted over the weeks), an asset check
hangs on it, the lineage shows which table it keeps, and one table can be maintained on demand
with the UI's Materialize button. The assets are not upstream of anything and have no
automation condition: they run weekly (:data:`weekly_lake_maintenance_schedule`) or on demand
(``lake_maintenance_job``, or materialize one).

Each maintenance asset runs in its table's pool (``defs.sources.table_pool``), the pool every
raw asset runs in too, so it never runs beside a writer of the same table.
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import CONTRACTS, raw_asset_key, table_pool
from assets_project.lib.contracts import Contract
from assets_project.lib.lake import delta_table, ensure_source_tables, is_delta_table
from assets_project.lib.maintenance import (
    DEFAULT_MAX_SMALL_FILES,
    MIN_RETENTION,
    MaintenanceSettings,
    RetentionTooShortError,
    maintain,
    table_stats,
)
from assets_project.lib.redact import redacting_errors

LAKE_GROUP = "lake"


class MaintenanceConfig(dg.Config):
    """How a maintenance run treats its tables (the defaults are the weekly schedule's)."""

    retention_days: float = MIN_RETENTION.days
    """Vacuum keeps files an older version still references for this long. Below 7 days only
    with ``allow_short_retention``."""
    allow_short_retention: bool = False
    """Explicit override for a retention below 7 days: only when no reader or writer of the
    table is running (a reader of an older snapshot, or a writer's uncommitted files, would
    lose their files)."""
    compact: bool = True
    """Compact small files (or z-order, where the table's settings name columns)."""
    vacuum: bool = True
    """Delete files no version within the retention references."""


def maintenance_key(source: str) -> dg.AssetKey:
    """Key of the maintenance asset of ``source``'s tables."""
    return dg.AssetKey(["lake_maintenance", source])


def _settings(contract: Contract, config: MaintenanceConfig, *, raw: bool) -> MaintenanceSettings:
    try:
        return MaintenanceSettings.for_contract(
            contract,
            raw=raw,
            retention=timedelta(days=config.retention_days),
            allow_short_retention=config.allow_short_retention,
            compact=config.compact,
            vacuum=config.vacuum,
        )
    except RetentionTooShortError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc


def build_maintenance_asset(contract: Contract) -> dg.AssetsDefinition:
    """The maintenance asset of ``contract``'s raw and dead-letter tables."""
    source = contract.name

    @dg.asset(
        key=maintenance_key(source),
        group_name=LAKE_GROUP,
        deps=[raw_asset_key(source)],
        pool=table_pool(source),
        kinds={"delta"},
        owners=[contract.owner],
        tags={"source": source},
        description=f"Maintenance of `lake/raw/{source}` and `lake/dlq/{source}`: compaction "
        "of small files (z-order where configured), vacuum (retention 7 days or more unless "
        "explicitly overridden), a checkpoint and log cleanup. Keeps every Delta app "
        "transaction (the exactly-once ledger). Runs in the table's pool, never beside a "
        "writer of the table.",
    )
    def _maintenance(
        context: dg.AssetExecutionContext, config: MaintenanceConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        layout = lake.layout
        metadata: dict[str, Any] = {"retention_days": config.retention_days}
        commit = {"batch_id": context.run.run_id, "maintenance": source}
        with redacting_errors(lake.redactor):  # a lake error never carries the store's secret
            ensure_source_tables(layout, contract)
            for prefix, uri, raw in (
                ("raw", layout.raw_uri(source), True),
                ("dlq", layout.dlq_uri(source), False),
            ):
                report = maintain(uri, _settings(contract, config, raw=raw), commit)
                context.log.info(
                    f"{uri}: {report.before.files} -> "
                    f"{report.after.files if report.after else '?'} files, "
                    f"{report.files_vacuumed} vacuumed, steps {', '.join(report.steps)}"
                )
                metadata.update(report.as_metadata(prefix))
        return dg.MaterializeResult(metadata=metadata)

    return _maintenance


def build_small_files_check(contract: Contract) -> dg.AssetChecksDefinition:
    """WARN when a table of ``contract``'s source has many small files that compaction merges."""
    source = contract.name

    @dg.asset_check(
        asset=maintenance_key(source),
        name="small_files",
        description=f"Warns when `lake/raw/{source}` or `lake/dlq/{source}` holds more than "
        f"{DEFAULT_MAX_SMALL_FILES} small files that compaction would merge (several small "
        "files in one partition). Reads the Delta logs only.",
    )
    def _check(lake: LakeResource) -> dg.AssetCheckResult:
        layout = lake.layout
        metadata: dict[str, int] = {}
        worst = 0
        for prefix, uri in (("raw", layout.raw_uri(source)), ("dlq", layout.dlq_uri(source))):
            if not is_delta_table(uri):
                continue
            stats = table_stats(delta_table(uri))
            metadata.update(stats.as_metadata(prefix))
            worst = max(worst, stats.compactable_small_files)
        return dg.AssetCheckResult(
            passed=worst <= DEFAULT_MAX_SMALL_FILES,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={**metadata, "max_compactable_small_files": DEFAULT_MAX_SMALL_FILES},
        )

    return _check


maintenance_assets = [build_maintenance_asset(c) for c in CONTRACTS]
small_files_checks = [build_small_files_check(c) for c in CONTRACTS]

lake_maintenance_job = dg.define_asset_job(
    name="lake_maintenance_job",
    selection=dg.AssetSelection.groups(LAKE_GROUP),
    description="Compact, vacuum, checkpoint and clean the logs of every raw and dead-letter "
    "Delta table, then check their small files. Each table waits for its writers (shared "
    "pool). Set allow_short_retention only when nothing reads or writes the lake.",
)

weekly_lake_maintenance_schedule = dg.ScheduleDefinition(
    name="weekly_lake_maintenance_schedule",
    job=lake_maintenance_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    description="Weekly lake maintenance, Sundays at 03:00 UTC (retention 7 days).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
