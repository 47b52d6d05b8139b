"""Jobs and schedules."""

from __future__ import annotations

import dagster as dg

from assets_project.defs.dbt.assets import shop_dbt_models

marts_job = dg.define_asset_job(
    name="marts_job",
    selection=dg.AssetSelection.assets(shop_dbt_models),
    description="Rebuild every dbt staging model and mart and run their tests.",
)

daily_marts_schedule = dg.ScheduleDefinition(
    name="daily_marts_schedule",
    job=marts_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Daily full rebuild of the marts at 06:00 UTC, after the night's drops.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
