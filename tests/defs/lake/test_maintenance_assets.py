"""The maintenance assets, their small-files check, schedule and pools, run in Dagster."""

from __future__ import annotations

import dagster as dg
from deltalake import DeltaTable

from assets_project.definitions import defs
from assets_project.defs.lake.maintenance import (
    MaintenanceConfig,
    maintenance_assets,
    maintenance_key,
    small_files_checks,
)
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import raw_asset_key, table_pool
from assets_project.lib.contracts import source_names
from assets_project.lib.lake import LakeLayout
from assets_project.lib.maintenance import DEFAULT_MAX_SMALL_FILES
from tests.lib.test_timetravel import drop, ingest


def _assets(*keys: dg.AssetKey) -> list[dg.AssetsDefinition]:
    return [a for a in maintenance_assets if a.key in keys]


def _check(source: str) -> dg.AssetChecksDefinition:
    return next(
        c
        for c in small_files_checks
        if maintenance_key(source) in {k.asset_key for k in c.check_keys}
    )


def test_every_writer_of_a_table_and_its_maintenance_share_one_pool() -> None:
    graph = defs.resolve_asset_graph()
    for source in source_names():
        raw = graph.assets_def_for_key(raw_asset_key(source))
        maintenance = graph.assets_def_for_key(maintenance_key(source))
        assert raw.op.pool == maintenance.op.pool == table_pool(source)
    job = defs.resolve_job_def("lake_maintenance_job")
    assert {k for k in job.asset_layer.selected_asset_keys} == {
        maintenance_key(s) for s in source_names()
    }
    schedule = defs.resolve_schedule_def("weekly_lake_maintenance_schedule")
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.job_name == job.name


def test_maintenance_records_before_and_after_and_its_check_passes(
    layout: LakeLayout, lake: LakeResource
) -> None:
    for n in range(4):
        ingest(layout, drop(layout, n))
    result = dg.materialize(
        [*_assets(maintenance_key("users")), _check("users")],
        resources={"lake": lake},
        selection=[maintenance_key("users")],
    )
    assert result.success
    metadata = result.asset_materializations_for_node(
        maintenance_key("users").to_python_identifier()
    )[0].metadata
    values = {k: v.value for k, v in metadata.items()}
    assert values["raw_before_files"] == 4 and values["raw_after_files"] == 1
    assert values["raw_after_version"] == values["raw_before_version"] + 1  # the compaction
    assert values["raw_before_app_transactions"] == values["raw_after_app_transactions"] == 4
    assert values["raw_duration_s"] >= 0 and "dlq_after_bytes" in values
    evaluation = result.get_asset_check_evaluations()[0]
    assert evaluation.passed


def test_a_retention_below_seven_days_fails_without_the_override(
    layout: LakeLayout, lake: LakeResource
) -> None:
    ingest(layout, drop(layout, 0))
    failed = dg.materialize(
        _assets(maintenance_key("users")),
        resources={"lake": lake},
        run_config=dg.RunConfig(
            ops={
                maintenance_key("users").to_python_identifier(): MaintenanceConfig(retention_days=1)
            }
        ),
        raise_on_error=False,
    )
    assert not failed.success
    allowed = dg.materialize(
        _assets(maintenance_key("users")),
        resources={"lake": lake},
        run_config=dg.RunConfig(
            ops={
                maintenance_key("users").to_python_identifier(): MaintenanceConfig(
                    retention_days=0, allow_short_retention=True
                )
            }
        ),
    )
    assert allowed.success


def test_the_small_files_check_warns_when_compaction_has_work(
    layout: LakeLayout, lake: LakeResource
) -> None:
    uri = layout.raw_uri("users")
    for n in range(DEFAULT_MAX_SMALL_FILES + 1):
        ingest(layout, drop(layout, n, rows=1))
    assert len(DeltaTable(uri).file_uris()) == DEFAULT_MAX_SMALL_FILES + 1
    result = dg.materialize(
        [*_assets(maintenance_key("users")), _check("users")],
        resources={"lake": lake},
        selection=dg.AssetSelection.checks_for_assets(maintenance_key("users")),
    )
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["raw_compactable_small_files"].value == DEFAULT_MAX_SMALL_FILES + 1
