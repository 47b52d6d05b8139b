"""The Dagster UI in a real browser: the webserver serves the project's asset graph."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"dagster-webserver did not answer within 180 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dagster-webserver` on a free loopback port with a throw-away DAGSTER_HOME."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    log = home / "webserver.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DATA_DIR": str(home / "data"),
    }
    webserver_bin = Path(sys.executable).parent / "dagster-webserver"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(webserver_bin), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/server_info", process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_service(Path(CHROMIUM).exists(), "Chromium", "apt-get install -y chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def _group_counts(body: str) -> dict[str, str]:
    """Group node name → asset count as the lineage graph prints them (name, then count)."""
    lines = [line.strip() for line in body.splitlines()]
    return {
        name: count
        for name, count in itertools.pairwise(lines)
        if name in {"raw", "staging", "marts"} and count.isdigit()
    }


def _open(browser: object, url: str, ready: Callable[[str], bool], tmp_path: Path) -> str:
    """Open ``url`` and return the page text once ``ready`` holds for it (60 s at most)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    try:
        page.goto(url)
        deadline = time.monotonic() + 60
        body = ""
        while time.monotonic() < deadline:
            body = page.inner_text("body")
            if ready(body):
                return body
            page.wait_for_timeout(500)
        pytest.fail(f"{url} never showed what was expected; page text: {body[:2000]}")
    finally:
        page.screenshot(path=str(tmp_path / "page.png"))
        page.close()


def test_lineage_shows_the_three_layers(webserver: str, browser: object, tmp_path: Path) -> None:
    body = _open(
        browser, f"{webserver}/asset-groups", lambda b: len(_group_counts(b)) == 3, tmp_path
    )
    assert _group_counts(body) == {"raw": "4", "staging": "4", "marts": "6"}


def test_raw_asset_page_shows_the_contract(webserver: str, browser: object, tmp_path: Path) -> None:
    url = f"{webserver}/assets/raw/users"
    body = _open(browser, url, lambda b: "Registered shop customers" in b, tmp_path)
    assert "geographic_region" in body


def test_mart_page_shows_the_dbt_description(
    webserver: str, browser: object, tmp_path: Path
) -> None:
    url = f"{webserver}/assets/fct_daily_revenue"
    body = _open(browser, url, lambda b: "Daily revenue" in b, tmp_path)
    assert "fct_daily_revenue" in body
