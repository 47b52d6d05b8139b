"""`make dev` on a fresh data folder, on the second run, and never onto a user's own data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.services.processes import group_alive

REPO = Path(__file__).resolve().parents[2]


def _make(*args: str, data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"DATA_DIR={data_dir}", "DEMO_SIZE=40"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _drops(landing: Path) -> list[str]:
    return sorted(
        str(p.relative_to(landing))
        for p in landing.rglob("*")
        if p.is_file() and not p.name.startswith("_")
    )


def _ingest_everything(data_dir: Path) -> None:
    """What the file sensors' runs do to the landing folder: every drop moves to the archive."""
    landing = data_dir / "landing"
    for name in _drops(landing):
        target = data_dir / "archive" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(landing / name, target)


def test_demo_data_is_written_once_and_a_second_run_succeeds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _make("demo-data", data_dir=data)
    assert first.returncode == 0, first.stdout + first.stderr
    landing = data / "landing"
    drops = _drops(landing)
    assert drops and (landing / "_manifest.json").exists()
    assert not (data / ".landing.partial").exists()

    _ingest_everything(data)  # the first `make dev` ingested the drops: only the manifest is left
    second = _make("demo-data", data_dir=data)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "not generating demo data" in second.stdout
    assert _drops(landing) == []  # archived drops are not generated again


def test_demo_data_never_lands_in_a_users_own_landing_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    users = data / "landing" / "users"
    users.mkdir(parents=True)
    result = _make("demo-data", data_dir=data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((data / "landing").rglob("*")) == [users]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_dev_until_welcome(data_dir: Path, log: Path, *, background: bool = False) -> str:
    """Run `make dev` until it prints its welcome, then stop it; returns what it printed.

    ``background``: started as a shell starts a background job (SIGINT ignored, which Dagster
    would pass on to SIGTERM) and stopped with SIGTERM, as a service manager or ``kill`` does.
    """
    port = _free_port()
    sigint = signal.SIG_IGN if background else signal.SIG_DFL
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "dev",
                f"DATA_DIR={data_dir}",
                "DEMO_SIZE=40",
                f"PORT={port}",
            ],
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As from a terminal: SIGINT delivered (a test runner may have it ignored).
            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
        )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if "Three things to try" in log.read_text():
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info") as answer:
                    assert answer.status == 200
                return log.read_text()
            time.sleep(1)
        pytest.fail(f"make dev exited ({process.poll()}) or never welcomed:\n{log.read_text()}")
    finally:
        _interrupt(process, signal.SIGTERM if background else signal.SIGINT)


def _interrupt(process: subprocess.Popen[bytes], sent: signal.Signals) -> None:
    """Ctrl-C, as a terminal sends it (or SIGTERM): to the whole process group; all must end."""
    os.killpg(process.pid, sent)
    deadline = time.monotonic() + 180
    # poll() reaps make itself; a zombie would keep the group alive.
    while time.monotonic() < deadline and (process.poll() is None or group_alive(process.pid)):
        time.sleep(0.5)
    left = subprocess.run(
        ["ps", "-o", "pid,args", "--no-headers", "-g", str(process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not left.strip(), f"make dev ignored {sent.name}; still running after 180 s:\n{left}"


@pytest.mark.slow
def test_make_dev_starts_twice_and_prints_where_to_go(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _run_dev_until_welcome(data, tmp_path / "first.log")
    assert "http://127.0.0.1:" in first and "fct_daily_revenue?view=lineage" in first
    _ingest_everything(data)
    # The second time from a background job, stopped with SIGTERM.
    second = _run_dev_until_welcome(data, tmp_path / "second.log", background=True)
    assert "not generating demo data" in second
