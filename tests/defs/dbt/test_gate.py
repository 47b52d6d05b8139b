"""The quality gate: a failing blocking check on a raw table keeps its batch out of the models,
in a run, under automation and on the daily schedule; fixed data opens the gate again."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.project import dbt_project
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.dbt.schedules import daily_marts_schedule, marts_job
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.ingestion.kafka import kafka_assets
from assets_project.defs.ingestion.postgres import database_source_assets
from assets_project.defs.quality.checks import contract_checks
from assets_project.defs.resources import KafkaResource, LakeResource, PostgresResource
from assets_project.defs.sources import CONTRACTS, raw_asset_key
from assets_project.lib.contracts import Contract, load_contract

USERS = load_contract("users")
STG_USERS = dg.AssetKey(["stg_users"])
RAW_ASSETS = [*file_drop_assets, *database_source_assets, *kafka_assets]


def _defs(lake: LakeResource) -> dg.Definitions:
    return dg.Definitions(
        assets=[*RAW_ASSETS, shop_dbt_models],
        asset_checks=contract_checks,
        jobs=[marts_job],
        schedules=[daily_marts_schedule],
        resources={
            "lake": lake,
            "postgres": PostgresResource(),
            "kafka": KafkaResource(),
            "dbt": dbt_resource(),
        },
    )


def _drop(lake: LakeResource, contract: Contract, *, good: bool) -> None:
    """A drop of ``contract``'s source: five valid users, or records that are all rejected.

    Every drop's content is new (the lake skips a file whose content it already holds).
    """
    folder = Path(lake.data_dir) / "landing" / contract.name
    stamp = time.time_ns()
    name = f"{contract.name}_{stamp}"
    if contract.format == "jsonl":
        text = "".join(json.dumps({"event_id": f"bad-{stamp}-{i}"}) + "\n" for i in range(3))
        path = folder / f"{name}.jsonl"
    else:
        header = ",".join(c.name for c in contract.input_columns)
        if good:
            rows = [
                f"{i},u{i}.{stamp}@shop.example,2025-01-01,free,europe,2026-01-02 10:00:00"
                for i in range(5)
            ]
        else:
            rows = [",".join(f"?{stamp}" for _ in contract.input_columns)] * 3
        text = "\n".join([header, *rows]) + "\n"
        path = folder / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _ingest(defs: dg.Definitions, instance: dg.DagsterInstance, *keys: dg.AssetKey) -> bool:
    """Materialize raw tables with their checks; whether the run succeeded."""
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.get_subset(asset_selection=set(keys)).execute_in_process(
        instance=instance, raise_on_error=False
    )
    checks = {k.asset_key for k in result.get_asset_check_evaluations()}
    assert checks == set(keys)  # the checks ran with the ingestion
    return result.success


def test_failed_blocking_check_holds_the_models_under_automation(lake: LakeResource) -> None:
    defs = _defs(lake)
    selection = dg.AssetSelection.assets(STG_USERS)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection)
        assert first.total_requested == 0  # raw/users is missing

        _drop(lake, USERS, good=False)
        assert not _ingest(defs, instance, raw_asset_key("users"))  # reject rate: ERROR
        held = dg.evaluate_automation_conditions(
            defs, instance, asset_selection=selection, cursor=first.cursor
        )
        assert held.total_requested == 0
        (evaluation,) = held.results
        eager, gate = evaluation.child_results
        assert eager.true_subset.size == 1  # eager() alone would build stg_users now
        assert gate.true_subset.size == 0  # ... but a parent's blocking check failed

        _drop(lake, USERS, good=True)
        assert _ingest(defs, instance, raw_asset_key("users"))
        opened = dg.evaluate_automation_conditions(
            defs, instance, asset_selection=selection, cursor=held.cursor
        )
        assert opened.get_num_requested(STG_USERS) == 1


def test_daily_schedule_leaves_out_the_models_behind_a_failed_check(lake: LakeResource) -> None:
    defs = _defs(lake)
    graph = defs.resolve_asset_graph()
    models = set(shop_dbt_models.keys)
    behind_users = set(dg.AssetSelection.assets(raw_asset_key("users")).downstream().resolve(graph))
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, repository_def=defs.get_repository_def()
        )
        request = daily_marts_schedule(context)
        assert isinstance(request, dg.RunRequest)
        assert set(request.asset_selection or []) == models  # nothing failed: everything

        _drop(lake, USERS, good=False)
        assert not _ingest(defs, instance, raw_asset_key("users"))
        request = daily_marts_schedule(context)
        assert isinstance(request, dg.RunRequest)
        assert set(request.asset_selection or []) == models - behind_users
        assert STG_USERS not in set(request.asset_selection or [])
        assert "raw/users:reject_rate" in request.tags["quality_gate/held"]

        for contract in CONTRACTS:
            _drop(lake, contract, good=False)
        assert not _ingest(defs, instance, *(raw_asset_key(c.name) for c in CONTRACTS))
        skipped = daily_marts_schedule(context)
        assert isinstance(skipped, dg.SkipReason)
        assert skipped.skip_message is not None
        for contract in CONTRACTS:
            assert f"raw/{contract.name}:reject_rate" in skipped.skip_message

        _drop(lake, USERS, good=True)
        assert _ingest(defs, instance, raw_asset_key("users"))
        request = daily_marts_schedule(context)
        assert isinstance(request, dg.RunRequest)
        assert STG_USERS in set(request.asset_selection or [])


@pytest.mark.slow
def test_failed_blocking_check_stops_the_models_in_a_run(lake: LakeResource) -> None:
    """raw/users and stg_users in one run (dbt builds the one model): a bad batch stops it."""
    defs = _defs(lake)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={raw_asset_key("users"), STG_USERS}
    )
    with dg.instance_for_test() as instance:
        _drop(lake, USERS, good=False)
        bad = job.execute_in_process(instance=instance, raise_on_error=False)
        assert not bad.success
        assert raw_asset_key("users") in {
            e.asset_key for e in bad.get_asset_materialization_events()
        }
        assert STG_USERS not in {e.asset_key for e in bad.get_asset_materialization_events()}
        started = {
            e.step_key for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_START
        }
        assert "raw__users" in started
        assert shop_dbt_models.op.name not in started  # dbt never ran

        _drop(lake, USERS, good=True)
        fixed = job.execute_in_process(instance=instance, raise_on_error=False)
        assert fixed.success
        built = {e.asset_key for e in fixed.get_asset_materialization_events()}
        assert built == {raw_asset_key("users"), STG_USERS}


def test_error_severity_checks_are_blocking(lake: LakeResource) -> None:
    """dbt tests of ERROR severity and the contract checks that fail with ERROR are blocking;
    WARN ones (e.g. the late-events test, the batch volume) are not."""
    graph = _defs(lake).resolve_asset_graph()
    manifest = json.loads(dbt_project.manifest_path.read_text())
    blocking = {
        k.to_user_string(): graph.get_check_spec(k).blocking for k in graph.asset_check_keys
    }
    severities = set()
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        unique_id = spec.metadata.get("dagster_dbt/unique_id")
        if unique_id is not None:
            severity = manifest["nodes"][unique_id]["config"]["severity"].lower()
            severities.add(severity)
            assert spec.blocking == (severity == "error"), key
    assert severities == {"error", "warn"}
    assert (
        blocking["agg_events_per_minute:assert_agg_events_per_minute_counts_every_event"] is False
    )
    for contract in CONTRACTS:
        raw = f"raw/{contract.name}"
        for name in ("row_conservation", "reject_rate", "primary_key_versions_unique"):
            assert blocking[f"{raw}:{name}"] is True
        assert blocking[f"{raw}:batch_volume"] is False
