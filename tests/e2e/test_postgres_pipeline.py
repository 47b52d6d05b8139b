"""End to end with the database channel: PostgreSQL orders → raw Delta (merged) → dbt marts."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pytest

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.ingestion.kafka import kafka_assets
from assets_project.defs.ingestion.postgres import database_source_assets
from assets_project.defs.resources import KafkaResource, LakeResource, PostgresResource
from assets_project.demo.generate import generate
from assets_project.demo.shop_db import init_orders, simulate_traffic
from tests.postgres_server import is_valid_order, source_orders

pytestmark = pytest.mark.slow


def _fct_orders(lake: LakeResource) -> dict[int, tuple]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        rows = connection.execute(
            "select order_id, quantity, status, updated_at from main.fct_orders"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_marts_follow_the_database_through_inserts_updates_and_late_commits(
    postgres_url: str, lake: LakeResource
) -> None:
    landing = lake.layout.landing_dir
    generate(landing.parent / "drops", size=4000, seed=11, files=1)
    for source in ("users", "products", "user_events"):
        shutil.rmtree(landing / source)
        shutil.copytree(landing.parent / "drops" / source, landing / source)
    init_orders(postgres_url, size=4000, seed=11, defects=0.01)
    resources = {
        "lake": lake,
        "postgres": PostgresResource(url=postgres_url),
        "kafka": KafkaResource(),  # no broker: user events arrive as file drops
        "dbt": dbt_resource(),
    }
    instance = dg.DagsterInstance.ephemeral()
    assets = [*file_drop_assets, *database_source_assets, *kafka_assets, shop_dbt_models]

    for wave in range(2):
        if wave:
            simulate_traffic(postgres_url, inserts=10, updates=25, late=3, seed=wave, size=4000)
        result = dg.materialize(assets, resources=resources, instance=instance)
        assert result.success
        expected = {
            k: (row[3], row[5], row[7])
            for k, row in source_orders(postgres_url).items()
            if is_valid_order(row)
        }
        assert _fct_orders(lake) == expected
