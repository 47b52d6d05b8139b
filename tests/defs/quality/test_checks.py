"""Contract checks on raw assets, run after real ingestion runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan, execute_plan
from dagster._core.system_config.objects import ResolvedRunConfig

from assets_project.defs.ingestion.files import build_file_drop_asset
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import raw_asset_key
from assets_project.lib.contracts import load_contract

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"


def _drop(lake: LakeResource, name: str, text: str) -> None:
    path = Path(lake.data_dir) / "landing" / "users" / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _run(lake: LakeResource, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [build_file_drop_asset(USERS), build_contract_checks(USERS)],
        resources={"lake": lake},
        instance=instance,
    )
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_clean_batch_passes_every_check(lake: LakeResource) -> None:
    rows = "".join(
        f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n" for i in range(1, 41)
    )
    _drop(lake, "a.csv", HEADER + rows + "41,bad,2026-01-01,free,europe,2026-01-02\n")
    checks = _run(lake, dg.DagsterInstance.ephemeral())
    assert set(checks) == {
        "row_conservation",
        "reject_rate",
        "batch_volume",
        "primary_key_versions_unique",
        "email_unique",
    }
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
    conservation = checks["row_conservation"].metadata
    assert (conservation["records_read"].value, conservation["raw_rows"].value) == (41, 40)
    assert checks["reject_rate"].metadata["reject_rate"].value == round(1 / 41, 4)


def test_reject_rate_warns_then_fails_and_conflicts_are_found(lake: LakeResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _drop(
        lake,
        "a.csv",
        HEADER
        + "1,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "1,other@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "2,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "3,bad-email,2026-01-01,free,europe,2026-01-02 10:00:00\n",
    )
    checks = _run(lake, instance)
    assert not checks["reject_rate"].passed
    assert checks["reject_rate"].severity == dg.AssetCheckSeverity.WARN  # 25%: over warn only
    assert not checks["primary_key_versions_unique"].passed
    assert checks["primary_key_versions_unique"].metadata["conflicts"].value == 1
    assert not checks["email_unique"].passed
    assert checks["row_conservation"].passed

    _drop(lake, "b.csv", HEADER + "4,x,2026-01-01,free,europe,2026-01-02\n" * 3)
    checks = _run(lake, instance)
    assert not checks["reject_rate"].passed
    assert checks["reject_rate"].severity == dg.AssetCheckSeverity.ERROR  # 100% rejected


def test_batch_without_new_records_passes_the_batch_checks(lake: LakeResource) -> None:
    checks = _run(lake, dg.DagsterInstance.ephemeral())
    assert checks["row_conservation"].passed
    assert checks["batch_volume"].passed


def _job(lake: LakeResource) -> dg.JobDefinition:
    """The raw users asset and its checks as one job, as the file sensor's runs execute them."""
    return dg.Definitions(
        assets=[build_file_drop_asset(USERS)],
        asset_checks=[build_contract_checks(USERS)],
        jobs=[dg.define_asset_job("users_job", selection=[raw_asset_key("users")])],
        resources={"lake": lake},
    ).resolve_job_def("users_job")


ASSET_STEP, CHECK_STEP = "raw__users", "users_contract_checks"


def _file_config(name: str) -> dict[str, object]:
    return {"ops": {"raw__users": {"config": {"path": f"users/{name}"}}}}


class _StepwiseRun:
    """One run of ``job`` whose steps are executed one at a time, as a step worker does.

    Dagster's step-execution entry point (``execute_plan`` on a subset of the run's plan) is
    what the multiprocess executor runs in each step's process; calling it here makes the
    interleaving of two runs deterministic instead of timing-dependent.
    """

    def __init__(
        self,
        job: dg.JobDefinition,
        instance: dg.DagsterInstance,
        run_config: dict[str, object],
        parent: dg.DagsterRun | None = None,
    ) -> None:
        self.job, self.instance, self.run_config = job, instance, run_config
        self.plan = create_execution_plan(job, run_config=run_config)
        assert {s.key for s in self.plan.steps} == {ASSET_STEP, CHECK_STEP}
        self.run = instance.create_run_for_job(
            job,
            execution_plan=self.plan,
            run_config=run_config,
            parent_run_id=parent.run_id if parent else None,
            root_run_id=parent.root_run_id or parent.run_id if parent else None,
        )

    def step(self, key: str) -> list[dg.DagsterEvent]:
        """Execute one step of the run; fail the test if it fails."""
        subset = self.plan.build_subset_plan(
            [key], self.job, ResolvedRunConfig.build(self.job, self.run_config)
        )
        events = execute_plan(
            subset, InMemoryJob(self.job), self.instance, self.run, run_config=self.run_config
        )
        assert not any(e.is_failure for e in events), [e.message for e in events if e.is_failure]
        return events


def _evaluations(events: list[dg.DagsterEvent]) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def _drop_two_batches(lake: LakeResource) -> None:
    """``a.csv``: 3 of 4 records rejected (75%, over the fail threshold); ``b.csv``: 40 clean."""
    _drop(
        lake,
        "a.csv",
        HEADER
        + "1,a@shop.example,2026-01-01,free,europe,2026-01-02\n"
        + "2,bad,2026-01-01,free,europe,2026-01-02\n" * 3,
    )
    rows = "".join(
        f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02\n" for i in range(5, 45)
    )
    _drop(lake, "b.csv", HEADER + rows)


def test_each_run_judges_its_own_batch_when_runs_interleave(lake: LakeResource) -> None:
    """Run A's asset step, then all of run B, then run A's check step (issue 11, item 6).

    This is what happens when the sensor starts two files of one source at once: run B's
    materialization lands between run A's asset step and its check step. Judging "the latest
    materialization" judged B twice and A never.
    """
    _drop_two_batches(lake)
    job = _job(lake)
    with dg.instance_for_test() as instance:
        run_a = _StepwiseRun(job, instance, _file_config("a.csv"))
        run_a.step(ASSET_STEP)
        run_b = job.execute_in_process(run_config=_file_config("b.csv"), instance=instance)
        assert run_b.success
        checks_a = _evaluations(run_a.step(CHECK_STEP))

    checks_b = {e.check_name: e for e in run_b.get_asset_check_evaluations()}
    assert checks_a["reject_rate"].metadata["reject_rate"].value == 0.75
    assert not checks_a["reject_rate"].passed
    assert checks_a["reject_rate"].metadata["batch_id"].value == run_a.run.run_id
    assert checks_a["reject_rate"].severity == dg.AssetCheckSeverity.ERROR
    assert checks_a["row_conservation"].metadata["records_read"].value == 4
    assert checks_a["row_conservation"].passed
    assert checks_a["batch_volume"].metadata["records"].value == 4
    assert checks_b["reject_rate"].metadata["batch_id"].value == run_b.run_id
    assert checks_b["reject_rate"].passed
    assert checks_b["batch_volume"].metadata["records"].value == 40


def test_reexecuted_checks_judge_the_parent_runs_batch(lake: LakeResource) -> None:
    """A re-execution of run A's check step only (as "from failure" does) judges A's batch,
    even after run B materialized the asset."""
    _drop_two_batches(lake)
    job = _job(lake)
    with dg.instance_for_test() as instance:
        run_a = _StepwiseRun(job, instance, _file_config("a.csv"))
        run_a.step(ASSET_STEP)
        assert job.execute_in_process(run_config=_file_config("b.csv"), instance=instance).success
        retry = _StepwiseRun(job, instance, _file_config("a.csv"), parent=run_a.run)
        checks = _evaluations(retry.step(CHECK_STEP))

    assert not checks["reject_rate"].passed
    assert checks["reject_rate"].metadata["batch_id"].value == run_a.run.run_id
    assert "which this run re-executes" in (checks["reject_rate"].description or "")


def test_check_only_run_judges_the_latest_batch_and_says_so(lake: LakeResource) -> None:
    """A run that materialized nothing (checks launched by hand) judges the latest batch, named
    in its description and metadata."""
    _drop_two_batches(lake)
    job = _job(lake)
    with dg.instance_for_test() as instance:
        run_a = job.execute_in_process(run_config=_file_config("a.csv"), instance=instance)
        run_b = job.execute_in_process(run_config=_file_config("b.csv"), instance=instance)
        assert run_a.success and run_b.success
        checks = _evaluations(_StepwiseRun(job, instance, _file_config("a.csv")).step(CHECK_STEP))

    assert checks["reject_rate"].metadata["batch_id"].value == run_b.run_id
    assert checks["reject_rate"].passed
    assert "check-only run" in (checks["reject_rate"].description or "")
