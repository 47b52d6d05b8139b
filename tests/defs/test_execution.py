"""The run-tag executor: steps in the run worker's process for a tagged run and for a run of one
asset's step and its checks, else as configured."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from assets_project.defs.execution import EXECUTION_TAG, IN_PROCESS, run_tag_executor


@dg.asset
def step_pid() -> int:
    """The process the step ran in."""
    return os.getpid()


@dg.asset_check(asset=step_pid)
def step_pid_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"pid": os.getpid()})


@dg.asset
def other_step_pid() -> int:
    """The process this other (independent) step ran in."""
    return os.getpid()


ONE_ASSET = [dg.AssetKey("step_pid")]


def tagged_job() -> dg.JobDefinition:
    """A module-level job (reconstructable: the multiprocess mode needs it)."""
    defs = dg.Definitions(
        assets=[step_pid, other_step_pid],
        asset_checks=[step_pid_check],
        jobs=[dg.define_asset_job("pid_job")],
        executor=run_tag_executor,
    )
    return defs.resolve_job_def("pid_job")


def _step_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    pids = set()
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.is_step_start:
            pids.add(event.pid)
    return pids


MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}


@pytest.mark.parametrize(
    ("tags", "run_config", "selection", "in_process"),
    [
        ({EXECUTION_TAG: IN_PROCESS}, {}, None, True),
        ({}, {}, None, False),
        ({}, {"execution": {"config": {"in_process": {}}}}, None, True),
        ({EXECUTION_TAG: IN_PROCESS}, MULTIPROCESS, None, True),
        ({}, {}, ONE_ASSET, True),
        ({}, MULTIPROCESS, ONE_ASSET, False),
    ],
)
def test_a_tagged_run_or_one_assets_run_executes_its_steps_in_the_run_process(
    tags: dict[str, str],
    run_config: dict[str, object],
    selection: list[dg.AssetKey] | None,
    in_process: bool,
) -> None:
    """Without the tag, a run of both assets runs one process per step; a run of one asset and
    its check runs in the run process unless its run config asks for processes."""
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(tagged_job),
            instance=instance,
            tags=tags,
            run_config=run_config,
            asset_selection=selection,
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert [c.asset_check_key.name for c in checks] == ["step_pid_check"]
        pids = _step_pids(instance, result.run_id)
        steps = 2 if selection else 3
        assert len(pids) == (1 if in_process else steps)
        assert (pids == {os.getpid()}) is in_process


def test_the_automation_sensors_runs_carry_the_tag() -> None:
    """Its runs (the dbt step and the marts' checks) start no step processes."""
    from assets_project.definitions import defs

    sensor = defs.resolve_sensor_def("automation_condition_sensor")
    assert sensor.run_tags[EXECUTION_TAG] == IN_PROCESS
    assert defs.resolve_implicit_global_asset_job_def().executor_def is run_tag_executor
