"""The Prometheus endpoint: real ingestion runs and checks on a persistent instance, served
over HTTP on 127.0.0.1, scraped and parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from prometheus_client.parser import text_string_to_metric_families

from assets_project.cli.metrics import LakehouseCollector, serve
from assets_project.defs.ingestion.files import build_file_drop_asset
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract
from assets_project.lib.metrics import NEWEST_EVENT_TIME, epoch_seconds
from tests.services.http import free_port, wait_until_answers

REPO = Path(__file__).resolve().parents[2]
USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"


def _rows(first: int, end: int) -> str:
    return "".join(
        f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        for i in range(first, end)
    )


ROWS = _rows(1, 31)
BAD = "".join(f"{i},not-an-email,2026-01-01,free,europe,2026-01-02\n" for i in range(100, 110))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _ingest(
    lake: LakeResource, instance: dg.DagsterInstance, text: str
) -> dg.ExecuteInProcessResult:
    path = Path(lake.data_dir) / "landing" / "users" / f"users_{time.time_ns()}.csv"
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))
    return dg.materialize(
        [build_file_drop_asset(USERS), build_contract_checks(USERS)],
        resources={"lake": lake},
        instance=instance,
    )


def test_a_scrape_reads_the_last_batch_checks_runs_and_freshness_from_the_instance(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    checks = build_contract_checks(USERS)
    collector = LakehouseCollector(instance, sorted(checks.check_keys, key=str), sources=["users"])
    server, thread = serve(collector, port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        empty = _scrape(url)  # nothing has run: no batch, no check result, zero runs
        assert not [name for name, _ in empty if name.startswith("lakehouse_batch_rows")]
        assert empty[("lakehouse_runs", (("status", "success"),))] == 0

        first = _ingest(lake, instance, HEADER + ROWS)
        # New users and 10 bad e-mails: 25% rejected, over the warn threshold only (a run that
        # succeeds with a failed WARN check; no blocking check fails).
        second = _ingest(lake, instance, HEADER + _rows(31, 61) + BAD)
        assert first.success and second.success
        instance._report_runless_asset_event(
            FreshnessStateChange(
                key=dg.AssetKey(["raw", "users"]),
                previous_state=FreshnessState.UNKNOWN,
                new_state=FreshnessState.PASS,
                state_change_timestamp=time.time(),
            )
        )
        samples = _scrape(url)  # read per scrape: the second batch is the last one
    finally:
        server.shutdown()
        thread.join(timeout=10)

    src = (("source", "users"),)
    assert samples[("lakehouse_batch_rows_in", src)] == 40
    assert samples[("lakehouse_batch_rows_rejected", src)] == 10
    assert samples[("lakehouse_batch_rows_written", src)] == 30
    assert samples[("lakehouse_batch_reject_rate", src)] == pytest.approx(0.25)
    assert samples[("lakehouse_batch_duration_seconds", src)] >= 0
    info = (("batch_id", second.run_id), ("channel", "files"), ("source", "users"))
    assert samples[("lakehouse_batch_info", info)] == 1
    (materialization,) = second.asset_materializations_for_node("raw__users")
    newest = epoch_seconds(materialization.metadata.get(NEWEST_EVENT_TIME))
    if newest is None:  # the asset does not record the newest event time: no lag to show
        assert ("lakehouse_event_time_lag_seconds", src) not in samples
    else:  # measured at the scrape, which came between the batch and now
        lag = samples[("lakehouse_event_time_lag_seconds", src)]
        assert 0 <= lag <= time.time() - newest
    # Every contract check ran twice; the latest results, by severity and one by one.
    evaluations = {e.check_name: e for e in second.get_asset_check_evaluations()}
    for name, evaluation in evaluations.items():
        labels = (("asset", "raw/users"), ("check", name), ("severity", evaluation.severity.value))
        assert samples[("lakehouse_asset_check_passed", labels)] == int(evaluation.passed)
    assert not evaluations["reject_rate_warning"].passed  # 25% rejected: over the warn threshold
    total = sum(
        samples[("lakehouse_asset_checks", (("outcome", o), ("severity", s)))]
        for o in ("passed", "failed")
        for s in ("ERROR", "WARN")
    )
    assert total == len(evaluations) and sum(
        samples[("lakehouse_asset_checks", (("outcome", "failed"), ("severity", s)))]
        for s in ("ERROR", "WARN")
    ) == sum(not e.passed for e in evaluations.values())
    assert samples[("lakehouse_runs", (("status", "success"),))] == 2
    assert samples[("lakehouse_runs", (("status", "failure"),))] == 0
    fresh = samples[("lakehouse_freshness_state", (("asset", "raw/users"), ("state", "pass")))]
    assert fresh == 1


def test_the_materialization_carries_the_reject_rate(
    lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    result = _ingest(lake, instance, HEADER + ROWS + BAD)
    (materialization,) = result.asset_materializations_for_node("raw__users")
    assert materialization.metadata["reject_rate"].value == pytest.approx(0.25)


def test_metrics_serve_command_answers_on_loopback(tmp_path: Path) -> None:
    """``python -m assets_project metrics serve --port N`` as a user starts it (code location
    loaded for its check keys, so the dbt manifest must exist as for ``make dev``)."""
    if not (REPO / "dbt_project" / "target" / "manifest.json").exists():
        pytest.fail("dbt manifest missing: run `make dbt-manifest` first (make test does)")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "DATA_DIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "assets_project", "metrics", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until_answers(url, process, log, "metrics serve")  # it loads the code location
        samples = _scrape(url)
        checks = [key for key in samples if key[0] == "lakehouse_asset_checks"]
        assert len(checks) == 4 and all(samples[key] == 0 for key in checks)
        assert samples[("lakehouse_runs", (("status", "success"),))] == 0
        assert f"serving metrics of {tmp_path / 'home'} on {url}" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_grafana_dashboard_plots_only_metrics_the_endpoint_serves(
    instance: dg.DagsterInstance,
) -> None:
    import json
    import re

    dashboard = json.loads((REPO / "deploy" / "grafana" / "lakehouse.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\blakehouse_[a-z_]+", expr)}
    served = {family.name for family in LakehouseCollector(instance, []).collect()}
    assert used == served, (used - served, served - used)  # nothing unknown, nothing unplotted
