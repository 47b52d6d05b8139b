"""File-drop sensors and raw assets against real files in a temporary landing folder."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from assets_project.defs.ingestion.files import (
    RUN_KEY_TAG,
    FileDropConfig,
    build_file_drop_asset,
    build_file_drop_sensor,
)
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract
from assets_project.lib.landing import LandingPolicy
from tests.writers import append_after_the_last_batch

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROW = "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"


def _settled(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    old = time.time() - 120
    os.utime(path, (old, old))
    return path


def _settling(lake: LakeResource, seconds: float) -> LakeResource:
    return LakeResource(
        data_dir=lake.data_dir,
        lake_uri=lake.lake_uri,
        warehouse_path=lake.warehouse_path,
        settle_seconds=seconds,
    )


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real (temporary) Dagster instance: the sensor finds the runs it requested in it."""
    with dg.instance_for_test() as instance:
        yield instance


class Clock:
    """The sensor's "now", moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _tick(
    lake: LakeResource,
    cursor: str | None,
    instance: dg.DagsterInstance | None = None,
    policy: LandingPolicy | None = None,
    clock: Clock | None = None,
) -> dg.SensorResult:
    sensor = build_file_drop_sensor(USERS, policy or LandingPolicy(), clock or time.time)
    with dg.build_sensor_context(
        cursor=cursor, resources={"lake": lake}, instance=instance
    ) as context:
        return sensor(context)


def _run(
    instance: dg.DagsterInstance, lake: LakeResource, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Execute a sensor's request on ``instance`` as the daemon does: its run config, its tags
    and the run key tag the daemon adds. No in-run step retries (they only add sleeps here)."""
    return dg.materialize(
        [build_file_drop_asset(USERS, retry_policy=None)],
        instance=instance,
        resources={"lake": lake},
        run_config=request.run_config,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
        raise_on_error=False,
    )


def _raw_rows(lake: LakeResource) -> list[dict]:
    uri = lake.layout.raw_uri("users")
    return DeltaTable(uri).to_pyarrow_table().to_pylist() if Path(uri).is_dir() else []


def _versions(lake: LakeResource) -> tuple[int, int]:
    layout = lake.layout
    return DeltaTable(layout.raw_uri("users")).version(), DeltaTable(
        layout.dlq_uri("users")
    ).version()


def test_sensor_requests_one_run_per_file_then_nothing(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    lake = _settling(lake, 10)
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / "users_0001.csv", HEADER + ROW)
    (landing / "users_0002.csv").write_text(HEADER)  # just written: still settling

    first = _tick(lake, None, instance)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key.startswith("users:users/users_0001.csv:")
    assert request.run_config["ops"]["raw__users"]["config"] == {"path": "users/users_0001.csv"}
    # One process per run: the raw step and its checks in the run worker (no step processes).
    assert request.run_config["execution"] == {"config": {"in_process": {}}}

    second = _tick(lake, first.cursor, instance)
    assert second.run_requests == []

    # A restart with the stored cursor behaves like the second tick; a run key is stable.
    assert _tick(lake, first.cursor, instance).run_requests == []
    assert _tick(lake, None, instance).run_requests[0].run_key == request.run_key
    # A cursor written before retries existed (the list of requested files) is still honoured.
    old_cursor = json.dumps([request.run_key.removeprefix("users:")])
    assert _tick(lake, old_cursor, instance).run_requests == []


def test_half_written_file_is_not_requested(lake: LakeResource) -> None:
    lake = _settling(lake, 30)
    landing = Path(lake.data_dir) / "landing" / "users"
    with (landing / "big.csv").open("w") as handle:
        handle.write(HEADER)
        handle.flush()
        result = _tick(lake, None)
    assert result.run_requests == []
    assert "still settling" in str(result.skip_reason)


def test_raw_asset_ingests_archives_and_quarantines(lake: LakeResource) -> None:
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / "good.csv", HEADER + ROW + "2,broken,2026-01-01,free,europe,x\n")
    _settled(landing / "empty.csv", "")
    old = time.time() - 3600  # past the grace an empty file gets to receive content
    os.utime(landing / "empty.csv", (old, old))
    asset = build_file_drop_asset(USERS)
    result = dg.materialize([asset], resources={"lake": lake})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__users")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["rows_in"], meta["rows_written"], meta["rows_rejected"]) == (2, 1, 1)
    assert meta["files_quarantined"] == 1
    assert meta["dagster/row_count"] == 1
    assert [c.name for c in meta["dagster/column_schema"].columns][:2] == ["user_id", "email"]

    data = Path(lake.data_dir)
    assert (data / "archive" / "users" / "good.csv").exists()
    reason = (data / "quarantine" / "users" / "empty.csv.reason").read_text()
    assert "users/empty.csv: file is empty" in reason
    assert not any(landing.iterdir())
    assert DeltaTable(lake.layout.dlq_uri("users")).to_pyarrow_table().num_rows == 1


def test_raw_asset_refuses_paths_outside_landing(lake: LakeResource) -> None:
    outside = Path(lake.data_dir) / "secret.csv"
    outside.write_text(HEADER + ROW)
    asset = build_file_drop_asset(USERS)
    result = dg.materialize(
        [asset],
        resources={"lake": lake},
        run_config=dg.RunConfig(ops={"raw__users": FileDropConfig(path="../secret.csv")}),
        raise_on_error=False,
    )
    assert not result.success
    assert outside.exists()
    assert not Path(lake.layout.raw_uri("users")).exists()


# --- a failed file is retried with backoff, then quarantined (issue 11, item 4) ---------------

POLICY = LandingPolicy(max_attempts=3, retry_seconds=60)


def _break_lake(lake: LakeResource) -> Path:
    """A regular file where the lake directory must be: every Delta write fails (the tests run
    as root, so taking permissions away would not)."""
    blocker = Path(lake.lake_uri)
    shutil.rmtree(blocker, ignore_errors=True)
    blocker.write_text("not a directory")
    return blocker


def _users_drop_on_a_broken_lake(lake: LakeResource, name: str) -> tuple[Path, Path, Clock]:
    """A settled users drop ``name`` on a broken lake: its landing folder, the lake's blocker
    (unlink it to mend the lake) and a fresh clock for the sensor."""
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / name, HEADER + ROW)
    return landing, _break_lake(lake), Clock()


def test_failed_file_is_retried_after_backoff_and_ingested_once_the_fault_is_gone(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    data = Path(lake.data_dir)
    landing, blocker, clock = _users_drop_on_a_broken_lake(lake, "users_0003.csv")

    first = _tick(lake, None, instance, POLICY, clock)
    (request,) = first.run_requests
    assert not _run(instance, lake, request).success
    assert (landing / "users_0003.csv").exists()

    waiting = _tick(lake, first.cursor, instance, POLICY, clock)
    assert waiting.run_requests == []
    message = waiting.skip_reason.skip_message
    assert message.startswith(
        "users_0003.csv: attempt 1/3 failed (NotADirectoryError: [Errno 20] Not a directory"
    )
    assert message.endswith("), retry after 60s")

    clock.now += 59
    early = _tick(lake, waiting.cursor, instance, POLICY, clock)
    assert early.run_requests == []
    assert early.skip_reason.skip_message.endswith("retry after 1s")

    blocker.unlink()  # the lake is back
    clock.now += 1
    retry = _tick(lake, early.cursor, instance, POLICY, clock)
    (again,) = retry.run_requests
    assert again.run_key == f"{request.run_key}:attempt2"
    assert again.run_config == request.run_config
    assert _run(instance, lake, again).success
    assert [r["user_id"] for r in _raw_rows(lake)] == [1]
    assert (data / "archive" / "users" / "users_0003.csv").read_text() == HEADER + ROW
    assert not any(landing.iterdir())

    after = _tick(lake, retry.cursor, instance, POLICY, clock)
    assert after.run_requests == []
    assert after.skip_reason.skip_message == "no new files"


def test_file_that_keeps_failing_is_quarantined_after_max_attempts_with_its_error(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    data = Path(lake.data_dir)
    landing, _, clock = _users_drop_on_a_broken_lake(lake, "users_0004.csv")
    error = "NotADirectoryError: [Errno 20] Not a directory"

    tick = _tick(lake, None, instance, POLICY, clock)
    keys = []
    for attempt, backoff in ((1, 60), (2, 120)):
        (request,) = tick.run_requests
        keys.append(request.run_key)
        assert not _run(instance, lake, request).success
        tick = _tick(lake, tick.cursor, instance, POLICY, clock)
        assert tick.run_requests == []
        message = tick.skip_reason.skip_message
        assert message.startswith(f"users_0004.csv: attempt {attempt}/3 failed ({error}")
        assert message.endswith(f"retry after {backoff}s")
        clock.now += backoff
        tick = _tick(lake, tick.cursor, instance, POLICY, clock)
    (request,) = tick.run_requests
    assert request.run_key == f"{keys[0]}:attempt3"
    keys.append(request.run_key)
    assert not _run(instance, lake, request).success

    final = _tick(lake, tick.cursor, instance, POLICY, clock)
    assert final.run_requests == []
    assert final.skip_reason.skip_message.startswith(
        f"users_0004.csv: quarantined after 3 failed attempts: {error}"
    )
    quarantined = data / "quarantine" / "users"
    assert (quarantined / "users_0004.csv").read_text() == HEADER + ROW
    reason = (quarantined / "users_0004.csv.reason").read_text()
    assert reason.startswith(
        f"users/users_0004.csv: quarantined after 3 failed attempts; last error: {error}"
    )
    assert not any(landing.iterdir())
    clock.now += 10_000
    assert _tick(lake, final.cursor, instance, POLICY, clock).skip_reason.skip_message == (
        "no new files"
    )
    runs = instance.get_runs(dg.RunsFilter(tags={"source_file": "users/users_0004.csv"}))
    assert sorted(r.tags[RUN_KEY_TAG] for r in runs) == sorted(keys)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.FAILURE}


def test_run_not_yet_ended_is_never_requested_twice_and_a_canceled_one_is_retried(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / "users_0005.csv", HEADER + ROW)
    clock = Clock()
    first = _tick(lake, None, instance, POLICY, clock)
    (request,) = first.run_requests
    # The daemon created the run (as it does before submitting it); it has not ended.
    job = dg.Definitions(
        assets=[build_file_drop_asset(USERS)], resources={"lake": lake}
    ).resolve_implicit_global_asset_job_def()
    run = instance.create_run_for_job(
        job,
        run_config=request.run_config,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
    )
    cursor = first.cursor
    for _ in range(2):
        clock.now += 100_000  # past any backoff and past the lost-run limit
        tick = _tick(lake, cursor, instance, POLICY, clock)
        assert tick.run_requests == []
        cursor = tick.cursor

    instance.report_run_canceled(run)
    tick = _tick(lake, cursor, instance, POLICY, clock)
    assert tick.skip_reason.skip_message == (
        f"users_0005.csv: attempt 1/3 failed (run {run.run_id} was canceled), retry after 60s"
    )
    clock.now += 60
    (retry,) = _tick(lake, tick.cursor, instance, POLICY, clock).run_requests
    assert retry.run_key == f"{request.run_key}:attempt2"


# --- half-written files and completion conventions (issue 11, item 5) -------------------------


def test_file_that_grows_while_read_is_left_in_landing_then_ingested_whole_once(
    lake: LakeResource, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer resumes after a pause longer than the settle time, while the run reads."""
    data = Path(lake.data_dir)
    landing = data / "landing" / "users"
    _settled(landing / "seed.csv", HEADER + ROW)
    seed = _tick(lake, None, instance)
    (request,) = seed.run_requests
    assert _run(instance, lake, request).success
    versions = _versions(lake)

    first_half = HEADER + "2,b@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    rest = "3,c@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    path = _settled(landing / "users_0006.csv", first_half)
    append_after_the_last_batch(monkeypatch, path, rest)  # read, not yet committed
    tick = _tick(lake, seed.cursor, instance)
    (request,) = tick.run_requests
    result = _run(instance, lake, request)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__users")
    assert materialization.metadata["files_changed_while_read"].value == ["users/users_0006.csv"]
    assert _versions(lake) == versions  # no raw commit, no dead-letter commit
    assert path.read_text() == first_half + rest  # still in landing, whole
    assert not (data / "archive" / "users" / "users_0006.csv").exists()
    monkeypatch.undo()

    old = time.time() - 120  # it settles
    os.utime(path, (old, old))
    tick = _tick(lake, tick.cursor, instance)
    (request,) = tick.run_requests
    assert _run(instance, lake, request).success
    rows = [r for r in _raw_rows(lake) if r["_source"] == "users/users_0006.csv"]
    assert sorted(r["user_id"] for r in rows) == [2, 3]
    assert (data / "archive" / "users" / "users_0006.csv").read_text() == first_half + rest
    assert _tick(lake, tick.cursor, instance).run_requests == []


def test_empty_file_waits_for_content_then_is_ingested_whole(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    lake = _settling(lake, 5)
    data = Path(lake.data_dir)
    landing = data / "landing" / "users"
    policy = LandingPolicy(empty_grace_seconds=300)
    path = _settled(landing / "users_0007.csv", "")  # created 120 s ago, nothing written yet

    tick = _tick(lake, None, instance, policy)
    assert tick.run_requests == []
    assert tick.skip_reason.skip_message == (
        "users_0007.csv: empty for 120s, waiting up to 300s for content (or a .done marker)"
    )
    assert not (data / "quarantine").exists()

    _settled(path, HEADER + ROW)  # the producer writes, and the file settles
    tick = _tick(lake, tick.cursor, instance, policy)
    (request,) = tick.run_requests
    assert _run(instance, lake, request).success
    assert [r["user_id"] for r in _raw_rows(lake)] == [1]
    assert (data / "archive" / "users" / "users_0007.csv").read_text() == HEADER + ROW
    assert not (data / "quarantine").exists()

    # One that stays empty past the grace is quarantined as empty.
    stale = landing / "users_0008.csv"
    stale.write_text("")
    old = time.time() - 301
    os.utime(stale, (old, old))
    (request,) = _tick(lake, tick.cursor, instance, policy).run_requests
    assert _run(instance, lake, request).success
    reason = (data / "quarantine" / "users" / "users_0008.csv.reason").read_text()
    assert reason == "users/users_0008.csv: file is empty: no header line\n"


def test_done_marker_makes_a_file_ready_at_once_and_moves_with_it(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    lake = _settling(lake, 3600)  # the settle rule alone would wait an hour
    data = Path(lake.data_dir)
    landing = data / "landing" / "users"
    (landing / "users_0009.csv").write_text(HEADER + ROW)
    (landing / "users_0009.csv.done").write_text("")
    (landing / "users_0010.csv").write_text(HEADER)  # no marker yet: still settling

    tick = _tick(lake, None, instance)
    (request,) = tick.run_requests
    assert request.tags == {"source_file": "users/users_0009.csv"}
    assert _run(instance, lake, request).success
    archived = data / "archive" / "users"
    assert (archived / "users_0009.csv").read_text() == HEADER + ROW
    assert (archived / "users_0009.csv.done").exists()
    assert sorted(p.name for p in landing.iterdir()) == ["users_0010.csv"]

    # A marker older than the file does not cover it (the file was written again after it).
    marker = landing / "users_0010.csv.done"
    marker.write_text("")
    old = time.time() - 60
    os.utime(marker, (old, old))
    tick = _tick(lake, tick.cursor, instance)
    assert tick.run_requests == []
    assert "users_0010.csv: modified" in tick.skip_reason.skip_message
    os.utime(marker)  # the producer marks it complete now
    (request,) = _tick(lake, tick.cursor, instance).run_requests
    assert request.tags == {"source_file": "users/users_0010.csv"}


@pytest.mark.parametrize(
    "temporary",
    [
        "users_0011.csv.part",
        "users_0011.csv.tmp",
        "users_0011.csv._COPYING_",  # hdfs dfs -put
        "users_0011.csv.inprogress",
        "users_0011.csv.uploading",
        ".users_0011.csv",  # rsync
        "_users_0011.csv",
    ],
)
def test_upload_under_a_temporary_name_is_read_only_after_the_rename(
    lake: LakeResource, instance: dg.DagsterInstance, temporary: str
) -> None:
    data = Path(lake.data_dir)
    landing = data / "landing" / "users"
    upload = _settled(landing / temporary, HEADER)  # the upload paused after the header
    tick = _tick(lake, None, instance)
    assert tick.run_requests == []
    assert tick.skip_reason.skip_message == "no new files"

    _settled(upload, HEADER + ROW)
    upload.rename(landing / "users_0011.csv")
    (request,) = _tick(lake, tick.cursor, instance).run_requests
    assert _run(instance, lake, request).success
    assert [r["user_id"] for r in _raw_rows(lake)] == [1]
    assert (data / "archive" / "users" / "users_0011.csv").read_text() == HEADER + ROW
    assert not (data / "quarantine").exists()
