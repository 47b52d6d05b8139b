"""deploy/Dockerfile, checked without a Docker engine: what it copies exists and is not ignored,
it prepares the dbt manifest with the script `make dbt-manifest` runs, it runs as a user without
privileges, and its CMD serves the code location (started here, and loaded through
deploy/workspace.grpc.yaml the way the webserver and daemon of docker-compose load it)."""

from __future__ import annotations

import fnmatch
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.dockerfile import Instruction, instructions
from tests.services.tansu import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return instructions(DOCKERFILE)


def _ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        or fnmatch.fnmatch(Path(prefix).name, pattern.removeprefix("**/"))
        for pattern in patterns
        for prefix in prefixes
    )


def test_base_image_is_python_311_slim(steps: list[Instruction]) -> None:
    assert steps[0] == Instruction("FROM", "python:3.11-slim")


def test_every_copy_source_exists_and_is_in_the_build_context(steps: list[Instruction]) -> None:
    copies = [s for s in steps if s.keyword == "COPY"]
    assert copies
    for copy in copies:
        *sources, _destination = copy.argument.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_dependencies_are_installed_with_the_constraints(steps: list[Instruction]) -> None:
    installs = [s.argument for s in steps if s.keyword == "RUN" and "pip install" in s.argument]
    assert installs
    assert all("-c constraints.txt" in run for run in installs)


def test_the_manifest_is_prepared_by_the_script_make_runs(steps: list[Instruction]) -> None:
    runs = [s.argument for s in steps if s.keyword == "RUN"]
    assert "deploy/dbt-manifest.sh" in runs
    recipe = subprocess.run(
        ["make", "-n", "dbt-manifest", "VENV=/nonexistent", "STAMP="],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "deploy/dbt-manifest.sh" in recipe


def test_the_script_writes_the_manifest(tmp_path: Path) -> None:
    """The build step itself, run here (with the venv's dbt) into a copy of dbt_project/."""
    copy = tmp_path / "repo"
    (copy / "deploy").mkdir(parents=True)
    (copy / "deploy" / "dbt-manifest.sh").write_bytes(
        (REPO / "deploy/dbt-manifest.sh").read_bytes()
    )
    (copy / "deploy" / "dbt-manifest.sh").chmod(0o755)
    subprocess.run(["cp", "-r", str(REPO / "dbt_project"), str(copy / "dbt_project")], check=True)
    subprocess.run(["rm", "-rf", str(copy / "dbt_project" / "target")], check=True)
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DBT": str(BIN / "dbt"),
        "PYTHONPATH": str(REPO),
    }
    subprocess.run([str(copy / "deploy" / "dbt-manifest.sh")], env=env, check=True, timeout=300)
    assert (copy / "dbt_project" / "target" / "manifest.json").stat().st_size > 0


def test_runs_as_a_user_without_privileges(steps: list[Instruction]) -> None:
    users = [s.argument for s in steps if s.keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    keywords = [s.keyword for s in steps]
    assert keywords.index("USER") < keywords.index("CMD")


def test_cmd_serves_the_module_of_the_workspace(steps: list[Instruction]) -> None:
    (cmd,) = [s for s in steps if s.keyword == "CMD"]
    argv = cmd.exec_form()
    assert argv[:3] == ["dagster", "code-server", "start"]
    module = argv[argv.index("-m") + 1]
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == module
    assert argv[argv.index("-p") + 1] == str(
        yaml.safe_load((REPO / "deploy/workspace.grpc.yaml").read_text())["load_from"][0][
            "grpc_server"
        ]["port"]
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the code server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the code server did not listen on {port} within {timeout} s")


@pytest.fixture
def code_server(steps: list[Instruction], tmp_path: Path) -> Iterator[int]:
    """The Dockerfile's CMD, run here on 127.0.0.1 and a free port (not 0.0.0.0:4000)."""
    (cmd,) = [s for s in steps if s.keyword == "CMD"]
    argv = cmd.exec_form()
    port = free_port()
    argv[argv.index("-h") + 1] = "127.0.0.1"
    argv[argv.index("-p") + 1] = str(port)
    data = tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ALERT_URLS")
    }
    env |= {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DATA_DIR": str(data),
        "LAKE_URI": str(data / "lake"),
        "WAREHOUSE_PATH": str(data / "warehouse.duckdb"),
        "PYTHONPATH": str(REPO),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    (tmp_path / "home").mkdir()
    process = subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, process, timeout=120)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_the_grpc_workspace_loads_the_code_server(code_server: int, tmp_path: Path) -> None:
    """`dagster definitions validate` loads deploy/workspace.grpc.yaml (host and port pointed at
    the local code server) and finds the location valid."""
    workspace = yaml.safe_load((REPO / "deploy/workspace.grpc.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    server |= {"host": "127.0.0.1", "port": code_server}
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    (tmp_path / "validate_home").mkdir()
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(tmp_path / "workspace.yaml")],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "validate_home")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "assets_project" in output
