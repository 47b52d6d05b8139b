"""Many run workers at once on the S3 lake: eight ingestion runs of one source, one file each.

The instance is the shipped one on PostgreSQL (`make dagster-home DAGSTER_STORAGE=postgres`);
the lake is on S3 (moto's server). The runs are made as the file sensor makes them (its job,
its run config: one file per run) and launched the way the daemon's run queue launches them:
``instance.launch_run`` with the default run launcher, which asks the code server to start one
``dagster api execute_run`` process per run; each run's step runs in that process (the
in-process executor: the run worker runs it). All eight are launched at once.

Only the raw asset's step is selected (not its checks): the test is about the commits, and six
step processes per run would multiply its time on a small machine.

Two instance settings are tested:

- the shipped one: the raw table's pool (``lake_user_events``) has one slot, so the runs
  overlap but their ingestion steps take turns (one writer of the table at a time);
- the pool raised to eight slots (``dagster instance concurrency set lake_user_events 8``):
  the eight steps commit to the same Delta table at once, and delta-rs rebases the losers of
  each commit race (recorded as ``num_retries`` in the Delta log).

Either way every record lands once (raw or dead-letter), each table gets one commit per file,
every run succeeds, and running every file again lands nothing.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import ModuleTarget
from psycopg.conninfo import conninfo_to_dict

from assets_project.defs.ingestion.raw import FileDropConfig
from assets_project.defs.sources import raw_asset_key, table_pool
from assets_project.lib.lake import LakeLayout, delta_table
from tests.concurrency import (
    SOURCE,
    Landed,
    assert_one_commit_per_file,
    demo_event_files,
    file_lines,
    retries,
)
from tests.services.s3 import MotoS3

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUNS = 8
JOB = f"__anonymous_asset_job_{SOURCE}_file_sensor"  # the job the file sensor's runs belong to
LOCATION = "assets_project"
POOL = table_pool(SOURCE)
STEP = raw_asset_key(SOURCE).to_python_identifier()
RUNS_END_BOUND_SECONDS = 900  # only reached when runs hang


@pytest.fixture
def postgres_instance(
    postgres_url: str, s3_layout: LakeLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The shipped instance on PostgreSQL, with the environment its code server and run workers
    inherit (S3 endpoint and credentials from the ``s3`` fixture, lake on S3, no settle delay,
    no database or broker)."""
    home = tmp_path / "dagster_home"
    subprocess.run(
        ["make", "-s", "dagster-home", f"DAGSTER_HOME={home}", "DAGSTER_STORAGE=postgres"],
        cwd=REPO,
        check=True,
    )
    p = conninfo_to_dict(postgres_url)
    for key, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": str(p["host"]),
        "DAGSTER_PG_PORT": str(p["port"]),
        "DAGSTER_PG_DB": str(p["dbname"]),
        "DAGSTER_PG_USER": str(p["user"]),
        "DAGSTER_PG_PASSWORD": str(p["password"]),
        "DATA_DIR": str(s3_layout.data_dir),
        "LAKE_URI": s3_layout.lake_uri,
        "WAREHOUSE_PATH": str(s3_layout.warehouse_path),
        "LANDING_SETTLE_SECONDS": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ALERT_URLS"):
        monkeypatch.delenv(key, raising=False)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield instance


@pytest.fixture
def workspace(postgres_instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The project's code location served by a code server process, as the daemon has it."""
    target = ModuleTarget(
        module_name="assets_project.definitions",
        attribute=None,
        working_directory=str(REPO),
        location_name=LOCATION,
    )
    servers: list[int] = []
    try:
        with WorkspaceProcessContext(postgres_instance, target) as context:
            servers = _code_servers()
            yield context
    finally:
        _end(servers)


def _code_servers() -> list[int]:
    """The code server processes this test process started (its `dagster api grpc` children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"api\x00grpc" in command:
            pids.append(int(entry.name))
    return pids


def _end(pids: list[int]) -> None:
    """Stop code servers that outlive their workspace (a shut-down server may linger)."""
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


@dataclass(frozen=True)
class Span:
    """When a run, or its ingestion step, started and ended (epoch seconds)."""

    start: float
    end: float


def _create_run(instance: dg.DagsterInstance, request: WorkspaceRequestContext, path: str) -> str:
    """A run of the file sensor's job for one landing file (its run config and tag), asset only."""
    location = request.get_code_location(LOCATION)
    (repository,) = location.get_repositories().values()
    selector = JobSubsetSelector(
        location_name=LOCATION,
        repository_name=repository.name,
        job_name=JOB,
        op_selection=None,
        asset_selection=[raw_asset_key(SOURCE)],
        asset_check_selection=[],
    )
    remote_job = location.get_job(selector)
    run_config = {
        **dg.RunConfig(ops={STEP: FileDropConfig(path=path)}).to_config_dict(),
        # The step in the run worker's process: a second process per run (the multiprocess
        # executor's) only doubles the start-up cost on a small machine; pools apply either way.
        "execution": {"config": {"in_process": {}}},
    }
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
    )
    run = instance.create_run(
        job_name=JOB,
        run_id=str(uuid.uuid4()),
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.tags, "source_file": path},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset([raw_asset_key(SOURCE)]),
        asset_check_selection=frozenset(),
        asset_graph=repository.asset_graph,
    )
    return run.run_id


def run_files(
    instance: dg.DagsterInstance,
    workspace: WorkspaceProcessContext,
    paths: list[str],
    *,
    at_once: bool = True,
) -> list[str]:
    """Launch one run per landing file (all at once, or each after the previous one ended) and
    wait until every run has ended; returns their run ids."""
    request = workspace.create_request_context()
    run_ids = [_create_run(instance, request, path) for path in paths]
    _initialize_pools(instance, run_ids)
    if at_once:
        # As the daemon's run queue does (dequeue_use_threads): the code server starts each
        # run worker while the others are being started.
        with ThreadPoolExecutor(max_workers=len(run_ids)) as pool:
            list(pool.map(lambda run_id: instance.launch_run(run_id, request), run_ids))
    else:
        for run_id in run_ids:
            instance.launch_run(run_id, request)
            _wait_until_ended(instance, [run_id])
    _wait_until_ended(instance, run_ids)
    return run_ids


def _initialize_pools(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    """Give the runs' pools their default limit before any run starts, as the daemon's run queue
    does (serially, in one process) before it launches a queued run.

    These runs are launched directly, not through the queue. Left to the run workers, eight of
    them would initialize the fresh pool at once, and on PostgreSQL all but one fail:
    ``initialize_concurrency_limit_to_default`` catches the unique violation of its INSERT and
    then updates in the aborted transaction (``InFailedSqlTransaction``; dagster-io/dagster#33552,
    open in 1.13). A run that goes through the queue never takes that path.
    """
    pools: set[str] = set()
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.run_op_concurrency is not None
        pools.update(run.run_op_concurrency.root_key_counts)
    assert POOL in pools, pools
    limited = {limit.name for limit in instance.event_log_storage.get_pool_limits()}
    for pool in sorted(pools - limited):
        instance.event_log_storage.initialize_concurrency_limit_to_default(pool)


def _wait_until_ended(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    deadline = time.monotonic() + RUNS_END_BOUND_SECONDS
    while True:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run is not None and run.is_finished for run in runs):
            return
        assert time.monotonic() < deadline, "runs did not end in time"
        time.sleep(1)


def run_spans(instance: dg.DagsterInstance, run_ids: list[str]) -> list[Span]:
    """Each run's start and end, as the instance recorded them."""
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids))
    assert len(records) == len(run_ids)
    spans = []
    for record in records:
        assert record.start_time is not None and record.end_time is not None
        spans.append(Span(record.start_time, record.end_time))
    return spans


def step_span(instance: dg.DagsterInstance, run_id: str) -> Span:
    """When the run's ingestion step started and succeeded (its event log's timestamps)."""
    stamps = {}
    for kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS):
        (entry,) = [e for e in instance.all_logs(run_id, of_type=kind) if e.step_key == STEP]
        stamps[kind] = entry.timestamp
    return Span(stamps[dg.DagsterEventType.STEP_START], stamps[dg.DagsterEventType.STEP_SUCCESS])


def peak(spans: list[Span]) -> int:
    """The most spans in progress at one moment."""
    edges = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def materialization(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The raw asset's materialization metadata of one run, as plain values."""
    (entry,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    event = entry.asset_materialization
    assert event is not None
    return {key: value.value for key, value in event.metadata.items()}


@pytest.mark.parametrize("pool_slots", [1, RUNS], ids=["shipped-pool", "pool-raised"])
def test_eight_run_workers_at_once_land_every_record_once(
    postgres_instance: dg.DagsterInstance,
    workspace: WorkspaceProcessContext,
    s3: MotoS3,
    s3_layout: LakeLayout,
    tmp_path: Path,
    pool_slots: int,
) -> None:
    instance = postgres_instance
    if pool_slots != 1:
        instance.event_log_storage.set_concurrency_slots(POOL, pool_slots)
    # With the shipped pool (one slot) the steps take turns whatever the number of runs: half
    # as many runs show it, and keep `make test` within its budget on two cores.
    count = RUNS if pool_slots != 1 else RUNS // 2
    files = demo_event_files(s3_layout.landing_dir, count)
    assert len(files) == count
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in files:
        shutil.copy2(path, kept / path.name)
    paths = [f"{SOURCE}/{p.name}" for p in files]
    lines = {f"{SOURCE}/{p.name}": file_lines(p) for p in files}

    run_ids = run_files(instance, workspace, paths)

    statuses = [instance.get_run_by_id(r).status for r in run_ids]  # type: ignore[union-attr]
    assert statuses == [dg.DagsterRunStatus.SUCCESS] * count, statuses
    # Eight worker processes start on a small machine one after another as its cores allow; at
    # least half of them must have been running at one moment (all eight on a machine with
    # cores to spare).
    runs = run_spans(instance, run_ids)
    assert peak(runs) >= count // 2, f"at most {peak(runs)} runs at once: {runs}"
    steps = sorted((step_span(instance, r) for r in run_ids), key=lambda s: s.start)
    if pool_slots == 1:  # one writer of the table at a time: the steps took turns
        assert all(a.end <= b.start for a, b in itertools.pairwise(steps)), steps
    else:
        assert peak(steps) >= 2, f"the ingestion steps never ran at the same time: {steps}"
    for run_id, name in zip(run_ids, paths, strict=True):
        metadata = materialization(instance, run_id)
        assert metadata["files"] == [name]
        assert metadata["rows_in"] == lines[name]
        assert metadata["rows_written"] + metadata["rows_rejected"] == lines[name]  # type: ignore[operator]
    assert not list((s3_layout.landing_dir / SOURCE).iterdir()), "every file was archived"

    Landed.read(s3_layout).assert_each_line_once(lines)
    raw_commits = assert_one_commit_per_file(s3_layout.raw_uri(SOURCE), set(lines))
    dlq_commits = assert_one_commit_per_file(s3_layout.dlq_uri(SOURCE), set(lines))
    if pool_slots == 1:
        assert retries(raw_commits) + retries(dlq_commits) == 0
    versions = [
        delta_table(uri).version() for uri in (s3_layout.raw_uri(SOURCE), s3_layout.dlq_uri(SOURCE))
    ]

    if pool_slots == 1:
        return  # (the drops again: below, with the runs' steps at once)
    # Every file dropped again: eight runs at once, and nothing new lands.
    for path in files:
        shutil.copy2(kept / path.name, path)
    again = run_files(instance, workspace, paths)
    for run_id, name in zip(again, paths, strict=True):
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert materialization(instance, run_id)["files_already_ingested"] == [name]
    assert [
        delta_table(uri).version() for uri in (s3_layout.raw_uri(SOURCE), s3_layout.dlq_uri(SOURCE))
    ] == versions
    Landed.read(s3_layout).assert_each_line_once(lines)
