"""Event-time freshness of every raw table, and the schedule that watches the sources.

The freshness policy of a raw asset (from its contract, set in the raw asset kit) says when the
asset was last *materialized*; a run that ingests a batch of old records refreshes that too.
``event_time_freshness`` judges the data: the age of the newest event or update in the raw
table (its ``update_time`` column, else its ``partition_by`` column), against the contract's
warn and fail windows. It runs with every ingestion and, with ``source_stopped``, every
15 minutes on ``source_monitoring_schedule``, so a source that goes quiet is noticed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from assets_project.defs.quality.anomalies import source_stopped_checks, verdict_result
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import CONTRACTS, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.freshness import event_time_verdict
from assets_project.lib.quality import event_time_column, newest_event_time


def build_event_time_freshness_check(contract: Contract) -> dg.AssetChecksDefinition:
    """The event-time freshness check of ``contract``'s raw table."""
    key = raw_asset_key(contract.name)
    sla = contract.freshness
    column = event_time_column(contract)

    @dg.asset_check(
        asset=key,
        name="event_time_freshness",
        description=f"Age of the newest {column} in the raw table: warns after "
        f"{sla.warn_after_minutes} min, fails after {sla.fail_after_minutes} min.",
    )
    def _check(lake: LakeResource) -> dg.AssetCheckResult:
        newest = newest_event_time(lake.layout, contract)
        verdict = event_time_verdict(
            newest,
            datetime.now(UTC),
            timedelta(minutes=sla.warn_after_minutes),
            timedelta(minutes=sla.fail_after_minutes),
        )
        about: dict[str, object] = {"column": column}
        if newest is not None:
            about["newest_event_time"] = dg.MetadataValue.timestamp(newest)
        return verdict_result(key, "event_time_freshness", verdict, **about)

    return _check


event_time_freshness_checks = [build_event_time_freshness_check(c) for c in CONTRACTS]

source_monitoring_job = dg.define_asset_job(
    name="source_monitoring_job",
    selection=dg.AssetSelection.checks(*event_time_freshness_checks, *source_stopped_checks),
    description="Event-time freshness and source-stopped checks of every raw table (reads only).",
)

source_monitoring_schedule = dg.ScheduleDefinition(
    name="source_monitoring_schedule",
    job=source_monitoring_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    description="Every 15 minutes: is the newest record of each raw table still fresh, and has "
    "any source stopped sending batches?",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
