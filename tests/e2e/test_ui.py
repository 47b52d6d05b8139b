"""The Dagster UI in a real browser, served by `dagster dev` (webserver and daemon) as `make dev`
starts it: the project's asset graph, and a raw asset materialized from its page.

The materialization test saves a screenshot of each step under ``data/screenshots/ui`` of the
repository (``SCREENSHOT_DIR`` to change it; ``data/`` is not versioned)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.services.http import free_port, wait_until_answers
from tests.services.processes import group_alive

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", REPO / "data" / "screenshots")) / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def dev_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DAGSTER_HOME of :func:`dev_ui`, with the repo's dagster.yaml."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.fixture(scope="module")
def dev_ui(dev_home: Path) -> Iterator[str]:
    """The UI and the daemon as `make dev` starts them (`dagster dev -w workspace.yaml` with
    the repo's dagster.yaml and the venv's bin on PATH), on a free loopback port, with a
    throw-away DAGSTER_HOME and data folder."""
    home = dev_home
    port = free_port()
    log = home / "dev.log"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DATA_DIR": str(home / "data"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", HOST, "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/server_info", process, log, "dagster dev")
        yield base
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to `dagster dev` and its children (webserver, daemon, code servers), which share
    its process group; what is left of the group after 60 s is killed."""
    os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (process.poll() is None or group_alive(process.pid)):
        time.sleep(0.5)
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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


def test_lineage_shows_the_three_layers(dev_ui: str, browser: object, tmp_path: Path) -> None:
    body = _open(browser, f"{dev_ui}/asset-groups", lambda b: len(_group_counts(b)) == 3, tmp_path)
    assert _group_counts(body) == {"raw": "4", "staging": "4", "marts": "6"}


def test_raw_asset_page_shows_the_contract(dev_ui: str, browser: object, tmp_path: Path) -> None:
    url = f"{dev_ui}/assets/raw/users"
    body = _open(browser, url, lambda b: "Registered shop customers" in b, tmp_path)
    assert "geographic_region" in body


def test_mart_page_shows_the_dbt_description(dev_ui: str, browser: object, tmp_path: Path) -> None:
    url = f"{dev_ui}/assets/fct_daily_revenue"
    body = _open(browser, url, lambda b: "Daily revenue" in b, tmp_path)
    assert "fct_daily_revenue" in body


def _wait_for_text(page: object, wanted: Callable[[str], bool], what: str) -> str:
    """The page's text once ``wanted`` holds for it (420 s at most: the run may queue behind
    the sensors' runs, and a run worker's start-up is slow on a busy two-core machine)."""
    deadline = time.monotonic() + 420
    body = ""
    while time.monotonic() < deadline:
        body = page.inner_text("body")  # type: ignore[attr-defined]
        if wanted(body):
            return body
        page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    pytest.fail(f"never saw {what}; page text: {body[:2000]}")


def _new_run(home: Path, before: set[str]) -> object:
    """The run of raw/users launched since ``before`` (run ids), read from the instance."""
    import dagster as dg

    deadline = time.monotonic() + 60
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline:
            for run in instance.get_runs(limit=20):
                selection = {key.to_user_string() for key in run.asset_selection or ()}
                if run.run_id not in before and selection == {"raw/users"}:
                    return run
            time.sleep(1)
    pytest.fail("no run of raw/users was launched from the asset page")


def test_materialize_a_raw_asset_from_its_page_then_see_its_checks_and_the_alert_sensor(
    dev_ui: str, dev_home: Path, browser: object
) -> None:
    import dagster as dg

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    # The UI's first-visit dialog ("Join the Dagster community") is skipped whenever it shows.
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )
    try:
        page.goto(f"{dev_ui}/assets/raw/users")
        _wait_for_text(page, lambda b: "Registered shop customers" in b, "the asset page")
        page.screenshot(path=str(SCREENSHOTS / "1_asset_page.png"))
        with dg.DagsterInstance.from_config(str(dev_home)) as instance:
            before = {run.run_id for run in instance.get_runs()}
        page.locator("button", has_text="Materialize").first.click()
        run = _new_run(dev_home, before)
        page.screenshot(path=str(SCREENSHOTS / "2_launched.png"))

        page.goto(f"{dev_ui}/runs/{run.run_id}")  # type: ignore[attr-defined]
        _wait_for_text(page, lambda b: "Success" in b, "the run succeed")
        page.screenshot(path=str(SCREENSHOTS / "3_run_succeeded.png"))
        with dg.DagsterInstance.from_config(str(dev_home)) as instance:
            stored = instance.get_run_by_id(run.run_id)  # type: ignore[attr-defined]
            assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS

        page.goto(f"{dev_ui}/assets/raw/users?view=checks")
        body = _wait_for_text(page, lambda b: "row_conservation" in b, "the asset's checks")
        assert "reject_rate" in body
        page.screenshot(path=str(SCREENSHOTS / "4_asset_checks.png"))

        page.goto(f"{dev_ui}/locations/assets_project/sensors/alert_sensor")
        body = _wait_for_text(
            page,
            lambda b: "one message per incident" in b and "Loading ticks" not in b,
            "the sensor and its ticks",
        )
        assert "alert_sensor" in body
        page.screenshot(path=str(SCREENSHOTS / "5_alert_sensor.png"))
    finally:
        page.close()
    assert sorted(p.name for p in SCREENSHOTS.glob("*.png")) == [
        "1_asset_page.png",
        "2_launched.png",
        "3_run_succeeded.png",
        "4_asset_checks.png",
        "5_alert_sensor.png",
    ]
