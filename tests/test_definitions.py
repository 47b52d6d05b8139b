"""The code location loads, and its graph is one well-described piece."""

from __future__ import annotations

import dagster as dg

from assets_project.definitions import defs
from assets_project.lib.contracts import source_names


def _graph() -> dg.AssetGraph:
    return defs.resolve_asset_graph()


def test_definitions_load() -> None:
    defs.validate_loadable(defs)
    assert defs.resolve_job_def("marts_job") is not None


def test_every_asset_has_group_and_description() -> None:
    graph = _graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in {"raw", "staging", "marts", "lake"}, key
        assert node.description and node.description.strip(), key


def test_no_orphan_keys_every_dbt_source_is_a_raw_asset() -> None:
    graph = _graph()
    materializable = set(graph.materializable_asset_keys)
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:
            assert parent in materializable, f"{key.to_user_string()} depends on orphan {parent}"
    raw_keys = {dg.AssetKey(["raw", name]) for name in source_names()}
    assert raw_keys <= materializable
    staging_parents = {
        p
        for k in graph.get_all_asset_keys()
        if graph.get(k).group_name == "staging"
        for p in graph.get(k).parent_keys
    }
    assert staging_parents == raw_keys


def test_dbt_tests_are_asset_checks() -> None:
    checks = {c.to_user_string() for c in _graph().asset_check_keys}
    assert any(c.startswith("stg_user_events:unique_stg_user_events_event_id") for c in checks)
    assert any(c.startswith("fct_orders:relationships") for c in checks)


def test_names_follow_conventions() -> None:
    for sensor in defs.sensors or []:
        assert sensor.name.endswith("_sensor")
    for schedule in defs.schedules or []:
        assert schedule.name.endswith("_schedule")
    for job in defs.jobs or []:
        assert job.name.endswith("_job")
