"""Running the whole asset graph on file drops, as the end-to-end tests do."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.ingestion.kafka import kafka_assets
from assets_project.defs.ingestion.postgres import database_source_assets
from assets_project.defs.quality.marts import mart_suites
from assets_project.defs.resources import KafkaResource, LakeResource, PostgresResource

RAW_ASSETS = [*file_drop_assets, *database_source_assets, *kafka_assets]
# raw/user_events also reads a Kafka topic; these runs take its ready file drops instead.
FILES_ONLY = {"ops": {"raw__user_events": {"config": {"channel": "files"}}}}


def lake_in(data: Path) -> LakeResource:
    """The lake resource over the data folder ``data`` (landing, lake, warehouse), no settle delay."""
    return LakeResource(
        data_dir=str(data),
        lake_uri=str(data / "lake"),
        warehouse_path=str(data / "warehouse.duckdb"),
        settle_seconds=0,
    )


def pipeline_resources(lake: LakeResource) -> dict[str, object]:
    """The code location's resources on ``lake``, with no database and no broker."""
    return {
        "lake": lake,
        "postgres": PostgresResource(),  # no database: orders arrive as CSV drops
        "kafka": KafkaResource(),
        "dbt": dbt_resource(),
    }


def materialize_all(lake: LakeResource, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Every raw asset and dbt model once, with the marts' quality suites; fails the test when
    the run fails."""
    result = dg.materialize(
        [*RAW_ASSETS, shop_dbt_models, *mart_suites],
        resources=pipeline_resources(lake),
        instance=instance,
        run_config=FILES_ONLY,
    )
    assert result.success
    return result
