"""The PostgreSQL-fed raw asset, its contract checks and its schedule, against a real server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import psycopg
from deltalake import DeltaTable

from assets_project.defs.ingestion.files import build_file_drop_sensor
from assets_project.defs.ingestion.postgres import (
    DatabaseSourceConfig,
    build_database_source_asset,
    build_extraction_schedule,
)
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource, PostgresResource
from assets_project.demo.shop_db import init_orders, simulate_traffic
from assets_project.lib.contracts import load_contract
from tests.lib.test_postgres import assert_lake_equals_source

ORDERS = load_contract("orders")
OP = "raw__orders"


def _materialize(
    lake: LakeResource,
    postgres: PostgresResource,
    instance: dg.DagsterInstance,
    config: DatabaseSourceConfig | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_database_source_asset(ORDERS), build_contract_checks(ORDERS)],
        resources={"lake": lake, "postgres": postgres},
        instance=instance,
        run_config=dg.RunConfig(ops={OP: config or DatabaseSourceConfig()}),
        raise_on_error=raise_on_error,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node(OP)
    return {k: v.value for k, v in materialization.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_scheduled_extractions_keep_the_lake_equal_to_the_source_and_pass_the_checks(
    postgres_url: str, lake: LakeResource
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    postgres = PostgresResource(url=postgres_url)
    init_orders(postgres_url, size=5000, seed=1, defects=0.01)

    first = _materialize(lake, postgres, instance)
    meta = _metadata(first)
    assert (meta["channel"], meta["mode"]) == ("postgres", "full")
    assert meta["rows_in"] == 500
    assert meta["deduplicated_by_key"] is False  # orders has its primary key
    assert meta["watermark_utc"] is not None
    checks = _checks(first)
    assert checks["row_conservation"].passed, checks["row_conservation"].metadata
    assert checks["primary_key_versions_unique"].passed

    simulate_traffic(postgres_url, inserts=5, updates=8, late=2, seed=2, defects=0.0)
    second = _materialize(lake, postgres, instance)
    meta = _metadata(second)
    assert meta["mode"] == "merge"
    assert meta["previous_watermark_utc"] < meta["watermark_utc"]
    assert meta["rows_written"] == 15
    assert meta["rows_already_in_lake"] == meta["rows_in"] - 15
    assert _checks(second)["row_conservation"].passed
    assert_lake_equals_source(postgres_url, lake.layout)


def test_rewind_by_run_config(postgres_url: str, lake: LakeResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    postgres = PostgresResource(url=postgres_url)
    init_orders(postgres_url, size=2000, seed=2, defects=0.0)
    _materialize(lake, postgres, instance)
    DeltaTable(lake.layout.raw_uri("orders")).delete("order_id <= 10")
    rewound = _materialize(
        lake, postgres, instance, DatabaseSourceConfig(rewind_to="2000-01-01T00:00:00")
    )
    assert _metadata(rewound)["extracted_since_utc"] == "2000-01-01T00:00:00"
    assert_lake_equals_source(postgres_url, lake.layout)


def test_permanent_errors_fail_the_run_without_retries(
    postgres_url: str, lake: LakeResource
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    missing_table = _materialize(
        lake, PostgresResource(url=postgres_url), instance, raise_on_error=False
    )
    assert not missing_table.success
    failure = missing_table.failure_data_for_node(OP)
    assert failure is not None
    assert 'relation "public.orders" does not exist' in failure.error.message
    assert not any(
        e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in missing_table.all_events
    )

    unconfigured = _materialize(
        lake,
        PostgresResource(),
        instance,
        DatabaseSourceConfig(channel="postgres"),
        raise_on_error=False,
    )
    failure = unconfigured.failure_data_for_node(OP)
    assert failure is not None and "DATABASE_URL is not set" in failure.error.message


def test_the_file_channel_still_feeds_the_same_asset(lake: LakeResource) -> None:
    drop = Path(lake.data_dir) / "landing" / "orders" / "orders_0001.csv"
    drop.write_text(
        "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at\n"
        "1,1,1,2,5.00,paid,2026-01-02 10:00:00,2026-01-02 11:00:00\n"
    )
    os.utime(drop, (time.time() - 60, time.time() - 60))
    sensor = build_file_drop_sensor(ORDERS)
    with dg.build_sensor_context(resources={"lake": lake}) as context:
        [request] = sensor(context).run_requests
    result = dg.materialize(
        [build_database_source_asset(ORDERS)],
        resources={"lake": lake, "postgres": PostgresResource()},
        run_config=request.run_config,
    )
    meta = _metadata(result)
    assert (meta["channel"], meta["rows_written"]) == ("files", 1)


def test_schedule_is_idle_without_a_database_and_requests_an_extraction_with_one(
    postgres_url: str, lake: LakeResource
) -> None:
    schedule = build_extraction_schedule(ORDERS)
    assert schedule.cron_schedule == "*/15 * * * *"
    with dg.build_schedule_context(resources={"postgres": PostgresResource(), "lake": lake}) as c:
        idle = schedule.evaluate_tick(c)
    assert not idle.run_requests
    assert "DATABASE_URL is not set" in (idle.skip_message or "")

    resources = {"postgres": PostgresResource(url=postgres_url), "lake": lake}
    with dg.build_schedule_context(resources=resources) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.run_config["ops"][OP]["config"]["channel"] == "postgres"
    with psycopg.connect(postgres_url) as connection:
        connection.execute("SELECT 1")
