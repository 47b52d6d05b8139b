"""Partial dbt runs, as the automation sensor starts them, on a warehouse built from nothing."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.ingestion.kafka import kafka_assets
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.demo.generate import generate
from assets_project.lib.dbt_artifacts import INVOCATION_FOLDERS_KEPT, target_root

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "selection",
    [
        ["stg_user_events", "stg_orders"],
        ["stg_users", "stg_products", "dim_users", "dim_products"],
    ],
)
def test_subset_run_on_empty_warehouse_succeeds(lake: LakeResource, selection: list[str]) -> None:
    generate(Path(lake.data_dir) / "landing", size=500, seed=3, files=1, overwrite=True)
    resources = {
        "lake": lake,
        "kafka": KafkaResource(),
        "dbt": dbt_resource(),
    }
    instance = dg.DagsterInstance.ephemeral()
    raw_assets = [*file_drop_assets, *kafka_assets]
    files_only = {"ops": {"raw__user_events": {"config": {"channel": "files"}}}}
    assert dg.materialize(
        raw_assets, resources=resources, instance=instance, run_config=files_only
    ).success
    result = dg.materialize(
        [*raw_assets, shop_dbt_models],
        selection=selection,
        resources=resources,
        instance=instance,
    )
    assert result.success
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == set(selection)
    checked = {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}
    assert checked == set(selection)


def test_a_dbt_build_removes_the_oldest_target_folders(lake: LakeResource) -> None:
    """dagster-dbt leaves a target folder per dbt command; the dbt asset keeps the newest."""
    generate(Path(lake.data_dir) / "landing", size=100, seed=4, files=1, overwrite=True)
    resources = {"lake": lake, "kafka": KafkaResource(), "dbt": dbt_resource()}
    root = target_root(Path(dbt_resource().project_dir))
    # More folders than are kept, all older than any real one: the oldest five must go.
    old = []
    for i in range(INVOCATION_FOLDERS_KEPT + 5):
        folder = root / f"shop_dbt_models-{i:07x}-{0xDEAD000 + i:07x}"
        (folder / "compiled").mkdir(parents=True, exist_ok=True)
        stamp = time.time() - 30 * 86_400 - i * 60
        os.utime(folder, (stamp, stamp))
        old.append(folder)
    try:
        result = dg.materialize(
            [*file_drop_assets, shop_dbt_models],
            selection=["raw/users", "stg_users"],
            resources=resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        assert not any(folder.exists() for folder in old[-5:])
    finally:
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
