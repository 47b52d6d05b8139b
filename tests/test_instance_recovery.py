"""A run worker killed with SIGKILL (an OOM kill) must not hold the warehouse pool slot for ever.

A real `dagster-daemon run` with the repository's dagster.yaml (sqlite storage in a temporary
DAGSTER_HOME) launches a run whose step holds the `duckdb_warehouse` slot; the test kills the run
worker with SIGKILL and expects the instance to mark the run failed, free its slot and run the
pooled op again, without anyone freeing the slot by hand. A second test kills the whole process
tree (daemon, code server, worker), which leaves the run STARTED until the runtime limit fails it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType

from tests import pooled_location

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Bounds of the polling waits below; only reached when recovery does not happen.
STEP_START_BOUND_SECONDS = 120
RECOVERY_BOUND_SECONDS = 60
RUN_END_BOUND_SECONDS = 120

T = TypeVar("T")


def _wait_for(what: str, probe: Callable[[], T | None], bound_seconds: float) -> T:
    """Poll `probe` until it returns a truthy value; fail with `what` after `bound_seconds`."""
    deadline = time.monotonic() + bound_seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.5)


def _write_instance(home: Path, shortened: tuple[str, ...]) -> None:
    """The repository's dagster.yaml with sqlite storage under `home` and the `shortened`
    run-monitoring settings set to one second.

    Only settings the shipped file has are shortened, so the test exercises exactly the
    mechanisms the shipped file turns on (and fails on a file without them).
    """
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    monitoring = config.get("run_monitoring") or {}
    for key in shortened:
        if key in monitoring:
            monitoring[key] = 1
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def _create_storage(home: Path) -> None:
    """Create the sqlite databases before the daemon and the CLI race to create them."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_info(pooled_location.POOL)
        assert instance.schedule_storage is not None
        instance.schedule_storage.all_instigator_state()


@dataclass(frozen=True)
class _Setup:
    """A temporary instance, a workspace with the pooled code location, and their environment."""

    home: Path
    control: Path
    workspace: Path
    env: dict[str, str]
    logs: Path

    @classmethod
    def create(cls, tmp_path: Path, shortened: tuple[str, ...]) -> _Setup:
        home = tmp_path / "dagster_home"
        control = tmp_path / "control"
        control.mkdir()
        _write_instance(home, shortened)
        _create_storage(home)
        workspace = tmp_path / "workspace.yaml"
        location = {
            "relative_path": str(Path(pooled_location.__file__).resolve()),
            "location_name": "pooled",
        }
        workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": location}]}))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            pooled_location.CONTROL_DIR_ENV: str(control),
        }
        return cls(home=home, control=control, workspace=workspace, env=env, logs=tmp_path)

    @contextmanager
    def daemon(self, name: str) -> Iterator[subprocess.Popen[bytes]]:
        """`dagster-daemon run` in its own process group; the group is killed on exit."""
        with (self.logs / f"{name}.log").open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield process
        finally:
            # The daemon, its code server, run workers and step processes share the group.
            with suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def launch(self, tags: dict[str, str] | None = None) -> str:
        """Submit a run of the pooled job to the queued run coordinator; returns its run id."""
        run_id = str(uuid.uuid4())
        command = [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(self.workspace),
            "-j",
            pooled_location.pooled_job.name,
            "--run-id",
            run_id,
        ]
        if tags:
            command += ["--tags", json.dumps(tags)]
        result = subprocess.run(
            command,
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return run_id

    def wait_until_holding_the_slot(self, instance: dg.DagsterInstance, run_id: str) -> int:
        """Wait until the run's step holds the pool slot; returns the run worker's pid."""
        marker = _wait_for(
            "the run's pooled step to start",
            lambda: (p := pooled_location.marker_path(self.control, run_id)).exists() and p,
            STEP_START_BOUND_SECONDS,
        )
        assert run_id in _pool_run_ids(instance)
        worker = _wait_for("the run worker's pid", lambda: _run_worker_pid(instance, run_id), 30)
        step_pid, step_parent = (int(n) for n in marker.read_text().split())
        assert step_parent == worker  # the step runs under the worker the test kills
        assert step_pid != worker
        return worker

    def release_and_run_again(self, instance: dg.DagsterInstance) -> None:
        """The pool works again: a new run of the pooled op completes (after any retry)."""
        (self.control / pooled_location.RELEASE_FILE).touch()
        # No runtime limit on this run: only the instance's handling of the dead run is tested.
        run_id = self.launch(tags={"dagster/max_runtime": "0"})
        _wait_for(
            "the new run to finish", lambda: _finished(instance, run_id), RUN_END_BOUND_SECONDS
        )
        assert _status(instance, run_id) == dg.DagsterRunStatus.SUCCESS
        assert pooled_location.marker_path(self.control, run_id).exists()
        assert run_id not in _pool_run_ids(instance)


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run worker reported in its "Started process for run" engine event.

    A run worker is a `multiprocessing` spawn of the code server: its command line does not
    name the run, its own first event does.
    """
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not (entry.message or "").startswith("Started process for run"):
            continue
        data = event.engine_event_data
        if data is not None and "pid" in data.metadata:
            return int(str(data.metadata["pid"].value))
    return None


def _pool_run_ids(instance: dg.DagsterInstance) -> set[str]:
    """Runs that hold a slot of, or have a step assigned to, the warehouse pool."""
    info = instance.event_log_storage.get_concurrency_info(pooled_location.POOL)
    return {slot.run_id for slot in info.claimed_slots} | {
        step.run_id for step in info.pending_steps
    }


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus | None:
    run = instance.get_run_by_id(run_id)
    return run.status if run else None


def _finished(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and run.is_finished


def _wait_until_failed_and_freed(instance: dg.DagsterInstance, run_id: str) -> None:
    _wait_for(
        "the dead run to be marked failed",
        lambda: _status(instance, run_id) == dg.DagsterRunStatus.FAILURE,
        RECOVERY_BOUND_SECONDS,
    )
    _wait_for(
        "the dead run's warehouse slot to be freed",
        lambda: run_id not in _pool_run_ids(instance),
        RECOVERY_BOUND_SECONDS,
    )


@pytest.mark.slow
def test_a_killed_run_worker_frees_its_warehouse_slot(tmp_path: Path) -> None:
    """SIGKILL of the run worker: its code server fails the run, run monitoring frees the slot."""
    setup = _Setup.create(tmp_path, ("poll_interval_seconds", "free_slots_after_run_end_seconds"))
    with setup.daemon("daemon"), dg.DagsterInstance.from_config(str(setup.home)) as instance:
        first = setup.launch()
        worker = setup.wait_until_holding_the_slot(instance, first)

        os.kill(worker, signal.SIGKILL)

        _wait_until_failed_and_freed(instance, first)
        # run_retries retries the crashed run; the new run queues behind that retry.
        setup.release_and_run_again(instance)


@pytest.mark.slow
def test_a_run_whose_worker_died_with_the_daemon_is_failed_and_freed(tmp_path: Path) -> None:
    """SIGKILL of the whole process tree (daemon, code server, run worker, step): nothing is
    left to report the run's end, so it stays STARTED until the run-monitoring runtime limit
    (shortened here) fails it after the daemon comes back; then its slot is freed.
    """
    fast_polls = ("poll_interval_seconds", "free_slots_after_run_end_seconds")
    setup = _Setup.create(tmp_path, fast_polls)
    with dg.DagsterInstance.from_config(str(setup.home)) as instance:
        with setup.daemon("first_daemon") as daemon:
            # Not retried: under the one-second runtime limit below a retry would be cut short too.
            first = setup.launch(tags={"dagster/max_retries": "0"})
            setup.wait_until_holding_the_slot(instance, first)
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        assert _status(instance, first) == dg.DagsterRunStatus.STARTED
        assert first in _pool_run_ids(instance)

        # The run has now been STARTED for longer than this limit (the shipped one is hours).
        _write_instance(setup.home, (*fast_polls, "max_runtime_seconds"))
        with setup.daemon("second_daemon"):
            _wait_until_failed_and_freed(instance, first)
            setup.release_and_run_again(instance)
