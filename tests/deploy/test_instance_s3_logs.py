"""Compute logs in S3: `make dagster-home DAGSTER_COMPUTE_LOGS=s3`, against a real moto S3 server.

A step's stdout and stderr land as objects in the bucket, and `dagster instance info` loads every
instance configuration the Makefile writes (SQLite, PostgreSQL, PostgreSQL + S3 logs) without
printing a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.services.s3 import MotoS3

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def make_home(home: Path, *settings: str) -> Path:
    """$DAGSTER_HOME written by `make dagster-home` with ``settings`` (``NAME=value``)."""
    subprocess.run(
        ["make", "-s", "dagster-home", f"DAGSTER_HOME={home}", *settings], cwd=REPO, check=True
    )
    return home


def pg_environment(conninfo: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.postgres.yaml reads, for ``conninfo``."""
    p = conninfo_to_dict(conninfo)
    return {
        "DAGSTER_PG_HOST": str(p["host"]),
        "DAGSTER_PG_PORT": str(p["port"]),
        "DAGSTER_PG_DB": str(p["dbname"]),
        "DAGSTER_PG_USER": str(p["user"]),
        "DAGSTER_PG_PASSWORD": str(p["password"]),
    }


@dg.op
def chatty() -> None:
    """Writes one line to stdout and one to stderr (what the compute log manager captures)."""
    sys.stdout.write("hello from stdout\n")
    sys.stderr.write("hello from stderr\n")


@dg.job
def chatty_job() -> None:
    chatty()


def test_default_home_keeps_local_compute_logs(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    assert "compute_logs" not in (home / "dagster.yaml").read_text()


def test_step_output_lands_in_the_bucket(
    s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.create_bucket()
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", bucket)
    home = make_home(tmp_path / "home", "DAGSTER_COMPUTE_LOGS=s3")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        result = chatty_job.execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id
    objects = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    keys = [o["Key"] for o in objects]
    assert keys, "no compute log object was written to the bucket"
    assert all(k.startswith("dagster/compute-logs/") for k in keys), keys
    assert any(run_id in k for k in keys), keys
    bodies = {k: s3.client().get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys}
    assert any("hello from stdout" in b for k, b in bodies.items() if k.endswith(".out"))
    assert any("hello from stderr" in b for k, b in bodies.items() if k.endswith(".err"))


# `dagster instance info` builds the compute log manager lazily (it prints `NoneType`): this
# builds it from the same DAGSTER_HOME, as a run worker or the webserver does.
LOAD_COMPUTE_LOGS = (
    "import dagster as dg; print(type(dg.DagsterInstance.get().compute_log_manager).__name__)"
)


def _run(command: list[str], home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ((), ["SqliteRunStorage", "SqliteEventLogStorage", "LocalComputeLogManager"]),
        (
            ("DAGSTER_STORAGE=postgres",),
            ["PostgresRunStorage", "PostgresScheduleStorage", "LocalComputeLogManager"],
        ),
        (
            ("DAGSTER_STORAGE=postgres", "DAGSTER_COMPUTE_LOGS=s3"),
            ["PostgresRunStorage", "PostgresEventLogStorage", "S3ComputeLogManager"],
        ),
    ],
    ids=["sqlite", "postgres", "postgres+s3-logs"],
)
def test_dagster_instance_info_loads_each_variant(
    settings: tuple[str, ...],
    expected: list[str],
    s3: MotoS3,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """The CLI loads the rendered configuration (storages connect, the S3 client is built) and
    neither the S3 secret key nor the database password appears in what it prints."""
    home = make_home(tmp_path / "home", *settings)
    env = {"DAGSTER_COMPUTE_LOGS_BUCKET": s3.create_bucket(), **pg_environment(postgres_url)}
    info = _run([str(BIN / "dagster"), "instance", "info"], home, env)
    logs = _run([sys.executable, "-c", LOAD_COMPUTE_LOGS], home, env)
    output = info.stdout + info.stderr + logs.stdout + logs.stderr
    assert info.returncode == 0, output
    assert logs.returncode == 0, output
    for name in expected:
        assert name in output, f"{name} not in `dagster instance info`:\n{output}"
    assert ("S3ComputeLogManager" in output) == ("DAGSTER_COMPUTE_LOGS=s3" in settings)
    assert s3.secret_key not in output
    assert env["DAGSTER_PG_PASSWORD"] not in output


def test_the_ecs_variant_loads_with_the_ecs_run_launcher(
    s3: MotoS3, postgres_url: str, tmp_path: Path
) -> None:
    """deploy/dagster-home.sh as the ECS task definition runs it: PostgreSQL storage, compute
    logs in S3 and dagster-aws's EcsRunLauncher (its ECS client built against moto's endpoint;
    nothing is launched: there is no ECS here)."""
    home = tmp_path / "home"
    env = {
        "DAGSTER_STORAGE": "postgres",
        "DAGSTER_COMPUTE_LOGS": "s3",
        "DAGSTER_RUN_LAUNCHER": "ecs",
        "DAGSTER_COMPUTE_LOGS_BUCKET": s3.create_bucket(),
        **pg_environment(postgres_url),
    }
    written = _run([str(REPO / "deploy" / "dagster-home.sh")], home, env)
    assert written.returncode == 0, written.stderr
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get();"
        " print(type(i.run_launcher).__name__, type(i.compute_log_manager).__name__,"
        " type(i.run_storage).__name__)"
    )
    loaded = _run([sys.executable, "-c", code], home, env)
    output = loaded.stdout + loaded.stderr
    assert loaded.returncode == 0, output
    assert "EcsRunLauncher S3ComputeLogManager PostgresRunStorage" in output
    assert s3.secret_key not in output and env["DAGSTER_PG_PASSWORD"] not in output
    bad = _run([str(REPO / "deploy" / "dagster-home.sh")], home, {"DAGSTER_RUN_LAUNCHER": "k8s"})
    assert bad.returncode == 2 and "DAGSTER_RUN_LAUNCHER must be local or ecs" in bad.stderr
