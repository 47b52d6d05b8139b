"""The run-tag executor: steps in the run worker's process for a tagged run, else as configured."""

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


def tagged_job() -> dg.JobDefinition:
    """A module-level job (reconstructable: the multiprocess mode needs it)."""
    defs = dg.Definitions(
        assets=[step_pid],
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


@pytest.mark.parametrize(
    ("tags", "run_config", "in_process"),
    [
        ({EXECUTION_TAG: IN_PROCESS}, {}, True),
        ({}, {}, False),
        ({}, {"execution": {"config": {"in_process": {}}}}, True),
        ({EXECUTION_TAG: IN_PROCESS}, {"execution": {"config": {"multiprocess": {}}}}, True),
    ],
)
def test_a_tagged_run_executes_its_steps_in_the_run_process(
    tags: dict[str, str], run_config: dict[str, object], in_process: bool
) -> None:
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(tagged_job), instance=instance, tags=tags, run_config=run_config
        )
        assert result.success
        pids = _step_pids(instance, result.run_id)
        assert len(pids) == (1 if in_process else 2)
        assert (pids == {os.getpid()}) is in_process


def test_the_automation_sensors_runs_carry_the_tag() -> None:
    """Its runs (the dbt step and the marts' checks) start no step processes."""
    from assets_project.definitions import defs

    sensor = defs.resolve_sensor_def("automation_condition_sensor")
    assert sensor.run_tags[EXECUTION_TAG] == IN_PROCESS
    assert defs.resolve_implicit_global_asset_job_def().executor_def is run_tag_executor
