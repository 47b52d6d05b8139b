"""Dagster's state on PostgreSQL: `make dagster-home DAGSTER_STORAGE=postgres`, against the real
server the tests start. Runs, check results, sensor ticks and cursors live in PostgreSQL and
survive a restart of the daemon; the default stays the embedded SQLite storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.scheduler.instigation import InstigatorType
from psycopg.conninfo import conninfo_to_dict

from assets_project.defs.ingestion.files import build_file_drop_asset
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USERS = load_contract("users")
SENSOR = "alert_sensor"  # running by default, every 30 s: it stores a cursor on each tick


def _connection_env(conninfo: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.postgres.yaml reads, for ``conninfo``."""
    p = conninfo_to_dict(conninfo)
    return {
        "DAGSTER_PG_HOST": str(p["host"]),
        "DAGSTER_PG_PORT": str(p["port"]),
        "DAGSTER_PG_DB": str(p["dbname"]),
        "DAGSTER_PG_USER": str(p["user"]),
        "DAGSTER_PG_PASSWORD": str(p["password"]),
    }


@pytest.fixture
def postgres_home(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A DAGSTER_HOME made by the Makefile for PostgreSQL, and the environment that uses it."""
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    subprocess.run(
        ["make", "-s", "dagster-home", f"DAGSTER_HOME={home}", "DAGSTER_STORAGE=postgres"],
        cwd=REPO,
        check=True,
    )
    connection = _connection_env(postgres_url)
    for key, value in connection.items():
        monkeypatch.setenv(key, value)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ALERT_URLS")
    }
    env |= {
        "DAGSTER_HOME": str(home),
        **connection,
        "DATA_DIR": str(data),
        "LAKE_URI": str(data / "lake"),
        "WAREHOUSE_PATH": str(data / "warehouse.duckdb"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    yield home, env


def _sensor_ticks(instance: dg.DagsterInstance) -> tuple[list[float], str | None]:
    """Timestamps of the alert sensor's finished ticks (it skips when there is nothing to
    send), and its stored cursor."""
    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == SENSOR
    ]
    if not states:
        return [], None
    (state,) = states
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
    cursor = getattr(state.instigator_data, "cursor", None)
    done = [t.timestamp for t in ticks if t.status.value in ("SUCCESS", "SKIPPED")]
    return sorted(done), cursor


def _daemon_until_ticks(
    home: Path, env: dict[str, str], count: int, timeout: float = 240
) -> tuple[list[float], str | None]:
    """Run `dagster-daemon` until the alert sensor has ``count`` finished ticks and its cursor
    stored; stop it. (The daemon stores a finished tick just before the sensor's cursor.)"""
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        with dg.DagsterInstance.from_config(str(home)) as instance:
            while True:
                ticks, cursor = _sensor_ticks(instance)
                if len(ticks) >= count and cursor is not None:
                    return ticks, cursor
                assert daemon.poll() is None, "the daemon exited"
                assert time.monotonic() < deadline, f"{len(ticks)} of {count} ticks in time"
                time.sleep(2)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def test_the_default_instance_stays_on_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run(["make", "-s", "dagster-home", f"DAGSTER_HOME={home}"], cwd=REPO, check=True)
    assert "storage:" not in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_runs_checks_and_sensor_state_live_in_postgres_and_survive_a_daemon_restart(
    postgres_home: tuple[Path, dict[str, str]], postgres_url: str, lake: LakeResource
) -> None:
    home, env = postgres_home
    info = subprocess.run(
        [str(BIN / "dagster"), "instance", "info"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "PostgresRunStorage" in info.stdout and "PostgresEventLogStorage" in info.stdout
    assert env["DAGSTER_PG_PASSWORD"] not in info.stdout + info.stderr

    # A run with its checks, stored in PostgreSQL.
    landing = Path(lake.data_dir) / "landing" / "users"
    landing.mkdir(parents=True, exist_ok=True)
    drop = landing / "users_1.csv"
    drop.write_text(
        "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
        "1,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n",
        encoding="utf-8",
    )
    os.utime(drop, (time.time() - 60, time.time() - 60))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize(
            [build_file_drop_asset(USERS), build_contract_checks(USERS)],
            resources={"lake": lake},
            instance=instance,
        )
        assert result.success
        run_id = result.run_id
        checks = {e.check_name for e in result.get_asset_check_evaluations()}
    with psycopg.connect(postgres_url) as connection:
        (stored,) = connection.execute(
            "SELECT count(*) FROM runs WHERE run_id = %s", [run_id]
        ).fetchall()[0]
    assert stored == 1  # in the PostgreSQL database, not in a file under DAGSTER_HOME
    assert not list(home.rglob("*.db")), "no SQLite storage next to dagster.yaml"

    # The daemon ticks the sensors; stopped and started again, it finds their state.
    before, _ = _daemon_until_ticks(home, env, count=1)  # with the cursor stored
    after, _ = _daemon_until_ticks(home, env, count=len(before) + 1)
    assert after[: len(before)] == before

    # A new instance (as after a restart of the webserver) reads the run and its checks.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        for name in checks:
            key = dg.AssetCheckKey(dg.AssetKey(["raw", "users"]), name)
            record = instance.get_latest_asset_check_evaluation_record(key)
            assert record is not None and record.run_id == run_id, name
