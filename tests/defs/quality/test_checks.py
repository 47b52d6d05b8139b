"""Contract checks on raw assets, run after real ingestion runs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import dagster as dg

from assets_project.defs.ingestion.files import FileDropConfig, build_file_drop_asset
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import Contract, load_contract
from tests.contract_documents import changed, document, prop

USERS = load_contract("users")
USERS_KEY = dg.AssetKey(["raw", "users"])
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
CLEAN = "".join(
    f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n" for i in range(1, 41)
)
REJECTED = "".join(f"{i},bad,2026-01-01,free,europe,2026-01-02\n" for i in range(100, 104))


def _drop(lake: LakeResource, name: str, text: str) -> None:
    path = Path(lake.data_dir) / "landing" / "users" / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _blocked(evaluations: list[dg.AssetCheckEvaluation]) -> bool:
    """Whether a blocking check failed with ERROR severity (Dagster then fails the run)."""
    return any(
        e.blocking and not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        for e in evaluations
    )


def _run(lake: LakeResource, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [build_file_drop_asset(USERS), build_contract_checks(USERS)],
        resources={"lake": lake},
        instance=instance,
        raise_on_error=False,
    )
    evaluations = result.get_asset_check_evaluations()
    assert result.success != _blocked(evaluations)
    return {e.check_name: e for e in evaluations}


def test_clean_batch_passes_every_check(lake: LakeResource) -> None:
    rows = "".join(
        f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n" for i in range(1, 41)
    )
    _drop(lake, "a.csv", HEADER + rows + "41,bad,2026-01-01,free,europe,2026-01-02\n")
    checks = _run(lake, dg.DagsterInstance.ephemeral())
    assert set(checks) == {
        "row_conservation",
        "reject_rate",
        "reject_rate_warning",
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
    # 25%: over the warn threshold only, so the blocking reject_rate passes and its warning
    # (not blocking: it never holds the marts) fails with WARN.
    assert checks["reject_rate"].passed
    assert not checks["reject_rate_warning"].passed
    assert checks["reject_rate_warning"].severity == dg.AssetCheckSeverity.WARN
    assert not checks["reject_rate_warning"].blocking
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


def _users_job(
    lake: LakeResource, hook: dg.HookDefinition | None = None, contract: Contract = USERS
) -> dg.JobDefinition:
    """raw/users and its checks as one job, as the file sensor runs it per file."""
    return dg.Definitions(
        assets=[build_file_drop_asset(contract)],
        asset_checks=[build_contract_checks(contract)],
        jobs=[dg.define_asset_job("users_job", hooks={hook} if hook else None)],
        resources={"lake": lake},
    ).resolve_job_def("users_job")


def _file(name: str) -> dg.RunConfig:
    return dg.RunConfig(ops={"raw__users": FileDropConfig(path=f"users/{name}")})


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_two_runs_at_once_each_judge_the_file_they_wrote(lake: LakeResource) -> None:
    """Run A writes a rejected file; run B writes a clean one and is checked before A's checks.

    A's checks then run while the asset's latest materialization is B's: they must still
    judge A's file (every record rejected), and B's checks B's file.
    """
    _drop(lake, "a.csv", HEADER + REJECTED)
    _drop(lake, "b.csv", HEADER + CLEAN)
    a_wrote, b_checked = threading.Event(), threading.Event()
    held: list[str] = []

    @dg.success_hook(name="hold_first_ingestion")
    def hold_first_ingestion(context: dg.HookContext) -> None:
        """After the first run's ingestion step, wait for the second run to finish."""
        if context.op.name == "raw__users" and not held:
            held.append(context.run_id)
            a_wrote.set()
            b_checked.wait(timeout=600)

    job = _users_job(lake, hold_first_ingestion)
    results: dict[str, dg.ExecuteInProcessResult] = {}
    with dg.instance_for_test() as instance:
        run_a = threading.Thread(
            target=lambda: results.update(
                a=job.execute_in_process(
                    run_config=_file("a.csv"), instance=instance, raise_on_error=False
                )
            )
        )
        run_a.start()
        try:
            assert a_wrote.wait(timeout=600)
            results["b"] = job.execute_in_process(run_config=_file("b.csv"), instance=instance)
        finally:
            b_checked.set()
            run_a.join(timeout=600)
        a, b = results["a"], results["b"]
        # A's reject rate fails with ERROR: a blocking check, so Dagster fails A's run.
        assert not a.success and b.success and held == [a.run_id]
        latest = instance.get_latest_materialization_event(USERS_KEY)
        assert latest is not None and latest.run_id == b.run_id

    checks_a, checks_b = _evaluations(a), _evaluations(b)
    # The interleaving happened: when A's checks evaluated, the asset's latest materialization
    # (the one Dagster attaches an evaluation to) was B's.
    target = checks_a["reject_rate"].target_materialization_data
    assert target is not None and target.run_id == b.run_id
    assert not checks_a["reject_rate"].passed
    assert checks_a["reject_rate"].severity == dg.AssetCheckSeverity.ERROR
    assert checks_a["reject_rate"].metadata["rejected"].value == 4
    assert checks_a["row_conservation"].passed
    assert checks_a["row_conservation"].metadata["records_read"].value == 4
    assert checks_a["batch_volume"].metadata["records"].value == 4
    assert all(checks_b[n].passed for n in ("row_conservation", "reject_rate", "batch_volume"))
    assert checks_b["row_conservation"].metadata["records_read"].value == 40
    for name in ("row_conservation", "reject_rate", "batch_volume"):
        assert checks_a[name].metadata["batch_id"].value == a.run_id, name
        assert checks_b[name].metadata["batch_id"].value == b.run_id, name
        assert checks_a[name].metadata["judged"].value == "this run"


def test_a_check_only_run_says_which_batch_it_judged(lake: LakeResource) -> None:
    """Checks launched on their own (no materialization in the run) judge the latest batch,
    the one Dagster attaches their evaluation to, and say so."""
    with dg.instance_for_test() as instance:
        _drop(lake, "a.csv", HEADER + REJECTED)
        job = _users_job(lake)
        first = job.execute_in_process(
            run_config=_file("a.csv"), instance=instance, raise_on_error=False
        )
        checks = dg.materialize(
            [build_file_drop_asset(USERS), build_contract_checks(USERS)],
            selection=dg.AssetSelection.checks_for_assets(USERS_KEY),
            resources={"lake": lake},
            instance=instance,
            raise_on_error=False,
        )
        assert not checks.get_asset_materialization_events()
        assert checks.success != _blocked(checks.get_asset_check_evaluations())
    evaluations = _evaluations(checks)
    reject_rate = evaluations["reject_rate"]
    assert not reject_rate.passed
    assert reject_rate.metadata["batch_id"].value == first.run_id
    assert reject_rate.metadata["judged"].value == "latest materialization"
    assert reject_rate.description is not None
    assert reject_rate.description.startswith("Check-only run")
    assert reject_rate.target_materialization_data is not None
    assert reject_rate.target_materialization_data.run_id == first.run_id


REPLAY = dg.RunConfig(ops={"raw__users": FileDropConfig(replay_dead_letters=True)})


def test_replay_checks_judge_the_batches_it_replayed(lake: LakeResource, tmp_path: Path) -> None:
    """Ingested under a stricter contract, 30 of 40 records are rejected; a replay under the
    same contract moves nothing (the batch's reject rate stays red), one under the real
    contract moves them all (green), and each replay conserves the batch's records."""
    doc = document("users")
    prop(doc, "user_id")["logicalTypeOptions"] = {"maximum": 10}
    strict = changed("users", tmp_path, doc)
    _drop(lake, "a.csv", HEADER + CLEAN)
    with dg.instance_for_test() as instance:
        ingestion = _users_job(lake, contract=strict).execute_in_process(
            run_config=_file("a.csv"), instance=instance, raise_on_error=False
        )
        assert not _evaluations(ingestion)["reject_rate"].passed
        replays = [
            _users_job(lake, contract=contract).execute_in_process(
                run_config=REPLAY, instance=instance, raise_on_error=False
            )
            for contract in (strict, USERS)
        ]
    for replay, moved in zip(replays, (0, 30), strict=True):
        checks = _evaluations(replay)
        conservation = checks["row_conservation"].metadata
        assert checks["row_conservation"].passed, conservation
        assert (conservation["examined"].value, conservation["moved"].value) == (30, moved)
        assert conservation["still_rejected"].value == 30 - moved
        assert conservation["unverified_batches"].value == []  # the ingestion run is known
        assert conservation["duplicated_records"].value == 0
        assert checks["reject_rate"].metadata["batch_id"].value == replay.run_id
        assert checks["reject_rate"].metadata["rejected"].value == 30 - moved
        assert checks["batch_volume"].passed
    assert not _evaluations(replays[0])["reject_rate"].passed  # nothing moved: 75% still
    assert _evaluations(replays[0])["reject_rate"].severity == dg.AssetCheckSeverity.ERROR
    assert _evaluations(replays[1])["reject_rate"].passed


def test_uniqueness_checks_judge_the_keys_and_values_of_their_own_batch(
    lake: LakeResource,
) -> None:
    """A batch conflicting with an earlier one fails; a later, unrelated batch passes (the
    conflict was reported with the batch that made it)."""
    instance = dg.DagsterInstance.ephemeral()
    _drop(
        lake,
        "a.csv",
        HEADER
        + "1,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "2,b@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n",
    )
    first = _run(lake, instance)
    assert first["primary_key_versions_unique"].passed and first["email_unique"].passed

    # User 1's same version with another e-mail; user 9 takes user 2's e-mail.
    _drop(
        lake,
        "b.csv",
        HEADER
        + "1,changed@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "9,b@shop.example,2026-01-01,free,europe,2026-01-03 10:00:00\n",
    )
    second = _run(lake, instance)
    assert not second["primary_key_versions_unique"].passed
    assert second["primary_key_versions_unique"].metadata["conflicts"].value == 1
    assert not second["email_unique"].passed
    assert second["email_unique"].metadata["conflicts"].value == 1

    _drop(lake, "c.csv", HEADER + "5,e@shop.example,2026-01-01,free,europe,2026-01-02\n")
    third = _run(lake, instance)
    assert third["primary_key_versions_unique"].passed and third["email_unique"].passed
