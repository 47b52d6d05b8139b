"""The code location: every asset, check, sensor and schedule of the lakehouse."""

from __future__ import annotations

import dagster as dg

from assets_project.defs.alerts.sensors import alert_sensor
from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.dbt.schedules import (
    agg_events_full_refresh_job,
    daily_agg_events_full_refresh_schedule,
    daily_marts_schedule,
    marts_job,
)
from assets_project.defs.execution import EXECUTION_TAG, IN_PROCESS, run_tag_executor
from assets_project.defs.ingestion.files import file_drop_assets, file_drop_sensors
from assets_project.defs.ingestion.kafka import kafka_assets, kafka_sensors
from assets_project.defs.ingestion.postgres import database_source_assets, extraction_schedules
from assets_project.defs.ingestion.replay import dead_letter_replay_job
from assets_project.defs.intervals import AUTOMATION_INTERVAL_SECONDS
from assets_project.defs.lake.maintenance import (
    lake_maintenance_job,
    maintenance_assets,
    small_files_checks,
    weekly_lake_maintenance_schedule,
)
from assets_project.defs.quality.anomalies import (
    anomaly_checks,
    mart_day_over_day_checks,
    source_stopped_checks,
)
from assets_project.defs.quality.checks import contract_checks, schema_drift_checks
from assets_project.defs.quality.freshness import (
    event_time_freshness_checks,
    source_monitoring_job,
    source_monitoring_schedule,
)
from assets_project.defs.quality.marts import mart_suites
from assets_project.defs.resources import (
    KafkaResource,
    LakeResource,
    PostgresResource,
)
from assets_project.lib.memory import use_returning_memory_pool

# Every process that loads the code location (run workers, step processes) frees what its
# steps' Arrow buffers held once they end (assets_project/lib/memory.py).
use_returning_memory_pool()

automation_sensor = dg.AutomationConditionSensorDefinition(
    name="automation_condition_sensor",
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materializes dbt models when new raw data has landed upstream.",
    # Its runs are the dbt step and the marts' checks: in the run worker's process, not one
    # process per step (assets_project/defs/execution.py).
    run_tags={EXECUTION_TAG: IN_PROCESS},
)

defs = dg.Definitions(
    assets=[
        *file_drop_assets,
        *database_source_assets,
        *kafka_assets,
        shop_dbt_models,
        *maintenance_assets,
    ],
    asset_checks=[
        *contract_checks,
        *schema_drift_checks,
        *anomaly_checks,
        *source_stopped_checks,
        *event_time_freshness_checks,
        *mart_suites,
        *mart_day_over_day_checks,
        *small_files_checks,
    ],
    jobs=[
        marts_job,
        agg_events_full_refresh_job,
        dead_letter_replay_job,
        lake_maintenance_job,
        source_monitoring_job,
    ],
    schedules=[
        daily_marts_schedule,
        daily_agg_events_full_refresh_schedule,
        *extraction_schedules,
        weekly_lake_maintenance_schedule,
        source_monitoring_schedule,
    ],
    sensors=[*file_drop_sensors, *kafka_sensors, automation_sensor, alert_sensor],
    executor=run_tag_executor,
    resources={
        "lake": LakeResource.from_env(),
        "postgres": PostgresResource.from_env(),
        "kafka": KafkaResource.from_env(),
        "dbt": dbt_resource(),
    },
)
