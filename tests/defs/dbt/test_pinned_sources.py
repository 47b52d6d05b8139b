"""A mart rebuilt against an earlier state of raw: dbt sources pinned by run config / dbt var."""

from __future__ import annotations

import dagster as dg
import pytest

from assets_project.defs.dbt.assets import DbtBuildConfig, shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.lib.lake import LakeLayout
from tests.lib.test_timetravel import drop, ingest

pytestmark = pytest.mark.slow


def test_dbt_args_carry_the_pins_as_dbt_vars() -> None:
    assert DbtBuildConfig().dbt_args() == ["build"]
    assert DbtBuildConfig(
        raw_as_of="2026-12-01T00:00:00Z", raw_versions={"users": 3}
    ).dbt_args() == [
        "build",
        "--vars",
        '{"raw_as_of": "2026-12-01T00:00:00Z", "raw_versions": {"users": 3}}',
    ]


def _stg_users_rows(lake: LakeResource, config: DbtBuildConfig) -> int:
    result = dg.materialize(
        [*file_drop_assets, shop_dbt_models],
        selection=["stg_users"],
        resources={"lake": lake, "kafka": KafkaResource(), "dbt": dbt_resource()},
        run_config=dg.RunConfig(ops={shop_dbt_models.op.name: config}),
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    value = event.materialization.metadata["dagster/row_count"].value
    assert isinstance(value, int)
    return value


def test_staging_rebuilt_against_an_earlier_version_of_raw(
    layout: LakeLayout, lake: LakeResource
) -> None:
    for n in range(2):
        ingest(layout, drop(layout, n))  # raw/users versions 1 and 2, 20 users each
    assert _stg_users_rows(lake, DbtBuildConfig(raw_versions={"users": 1})) == 20
    assert _stg_users_rows(lake, DbtBuildConfig()) == 40
