"""Jobs and schedules."""

from __future__ import annotations

import dagster as dg

from assets_project.defs.dbt.assets import DbtBuildConfig, shop_dbt_models
from assets_project.defs.dbt.gate import held_models

marts_job = dg.define_asset_job(
    name="marts_job",
    selection=dg.AssetSelection.assets(shop_dbt_models),
    description="Rebuild every dbt staging model and mart and run their tests (incremental "
    "models take only new rows; set full_refresh in the launchpad to rebuild them from scratch).",
)

agg_events_full_refresh_job = dg.define_asset_job(
    name="agg_events_full_refresh_job",
    selection=dg.AssetSelection.assets("agg_events_per_minute"),
    config=dg.RunConfig(ops={shop_dbt_models.op.name: DbtBuildConfig(full_refresh=True)}),
    description="Rebuild agg_events_per_minute from every event in stg_user_events "
    "(dbt --full-refresh), so late events in windows closed to them are counted; clears the "
    "assert_agg_events_per_minute_counts_every_event warning.",
)


@dg.schedule(
    name="daily_marts_schedule",
    job=marts_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Daily rebuild of the marts at 06:00 UTC, after the night's drops; models "
    "downstream of a raw table whose blocking check failed are left out (skipped if that is "
    "every model).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_marts_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Build every model the quality gate lets through (:mod:`assets_project.defs.dbt.gate`)."""
    models = set(shop_dbt_models.keys)
    held, failed = held_models(context.instance, context.repository_def.asset_graph, models)
    checks = ", ".join(c.to_user_string() for c in failed)
    if held == models:
        return dg.SkipReason(f"every model is held by failed blocking checks: {checks}")
    if held:
        context.log.warning(
            f"held back {len(held)} model(s) ({', '.join(sorted(k.to_user_string() for k in held))}) "
            f"by failed blocking checks: {checks}"
        )
    return dg.RunRequest(
        asset_selection=sorted(models - held, key=lambda k: k.to_user_string()),
        tags={"quality_gate/held": checks} if held else {},
    )


# Daily, after the marts: a window closed to late events is wrong until a full refresh. The
# refresh of this one model costs one aggregation over stg_user_events (the same scan its
# late-events check does on every build), far less than a full refresh of every model, and it
# bounds how long a closed window can stay wrong to a day without anyone acting.
daily_agg_events_full_refresh_schedule = dg.ScheduleDefinition(
    name="daily_agg_events_full_refresh_schedule",
    job=agg_events_full_refresh_job,
    cron_schedule="30 6 * * *",
    execution_timezone="UTC",
    description="Daily full refresh of agg_events_per_minute at 06:30 UTC, after the marts: "
    "counts the late events its incremental runs left out of closed windows.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
