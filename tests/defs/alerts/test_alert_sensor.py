"""The alert sensor against a real Dagster instance, real runs and real sinks on 127.0.0.1.

The runs are of a small asset with an ERROR check, defined here, whose data (a file) the test
breaks and fixes; they are executed on a persistent instance in a temporary DAGSTER_HOME. A
"restart" is a new sensor evaluation given only the cursor the previous one stored, as the
daemon does after a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

from assets_project.defs.alerts.sensors import alert_sensor, read_events
from tests.services.alert_sinks import (
    Mailbox,
    Webhook,
    mail_text,
    smtp_server,
    webhook_server,
)
from tests.services.http import free_port

UI = "http://ui.example:3000"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


def _orders_job(data: Path) -> dg.JobDefinition:
    """``orders`` reads a JSON list of amounts; it fails on unreadable data; its ERROR check
    fails when an amount is negative."""

    @dg.asset(name="orders", key_prefix="raw")
    def orders() -> dg.MaterializeResult:
        amounts = json.loads(data.read_text())
        return dg.MaterializeResult(metadata={"rows_in": len(amounts)})

    @dg.asset_check(asset=orders, name="amounts_not_negative")
    def amounts_not_negative() -> dg.AssetCheckResult:
        negative = [a for a in json.loads(data.read_text()) if a < 0]
        return dg.AssetCheckResult(
            passed=not negative,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"negative_rows": len(negative)},
        )

    defs = dg.Definitions(
        assets=[orders],
        asset_checks=[amounts_not_negative],
        jobs=[dg.define_asset_job("orders_job", selection=[orders])],
    )
    return defs.resolve_job_def("orders_job")


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance) -> str:
    return job.execute_in_process(instance=instance, raise_on_error=False).run_id


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, str]:
    """One evaluation of the sensor; its new cursor and its skip message."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = alert_sensor(context)
    assert isinstance(result, dg.SkipReason)
    return context.cursor, result.skip_message or ""


def _texts(webhook: Webhook) -> list[str]:
    return [body["text"] for _, body in webhook.posts]


def test_one_message_per_incident_to_webhook_and_mail_and_one_when_resolved(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    webhook: Webhook,
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERT_URLS", f"{webhook.url()} {mailbox.url()}")
    monkeypatch.setenv("DAGSTER_UI_URL", UI)
    data = tmp_path / "orders.json"
    job = _orders_job(data)

    data.write_text("[5, -3, -1, 7]")  # a bad batch: the check fails, the run succeeds
    bad_run = _run(job, instance)
    cursor, summary = _tick(instance, None)
    assert "1 alert(s)" in summary
    assert len(webhook.posts) == 1 and len(mailbox.messages) == 1
    text = _texts(webhook)[0]
    assert text.startswith("[lakehouse] ERROR: check amounts_not_negative on raw/orders failed")
    assert "Asset: raw/orders" in text and "Check: amounts_not_negative" in text
    assert "negative_rows: 2" in text  # the failing number
    assert f"Run: {bad_run}" in text and f"Link: {UI}/runs/{bad_run}" in text
    mail = mailbox.messages[0]
    assert mail["Subject"] == "[lakehouse] ERROR: check amounts_not_negative on raw/orders failed"
    assert mail["To"] == "ops@example.com"
    assert "negative_rows: 2" in mail_text(mail) and f"{UI}/runs/{bad_run}" in mail_text(mail)

    # The same incident again (another bad batch), a quiet tick, and a restart: no new message.
    _run(job, instance)
    cursor, _ = _tick(instance, cursor)
    cursor, _ = _tick(instance, cursor)
    cursor, summary = _tick(instance, cursor)  # a restart: a new evaluation, the stored cursor
    assert "0 alert(s)" in summary and "1 incident(s) open" in summary
    assert len(webhook.posts) == 1 and len(mailbox.messages) == 1

    data.write_text("[5, 3]")  # fixed: the check passes, the incident is resolved once
    good_run = _run(job, instance)
    cursor, _ = _tick(instance, cursor)
    _run(job, instance)
    cursor, _ = _tick(instance, cursor)
    assert len(webhook.posts) == 2 and len(mailbox.messages) == 2
    resolved = _texts(webhook)[1]
    assert resolved.startswith("[lakehouse] RESOLVED: check amounts_not_negative on raw/orders")
    assert f"Run: {good_run}" in resolved
    assert mailbox.messages[1]["Subject"].startswith("[lakehouse] RESOLVED:")
    assert {path for path, _ in webhook.posts} == {"/hook"}


def test_a_failed_run_and_its_retry_are_one_incident(
    tmp_path: Path, instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_URLS", webhook.url())
    monkeypatch.setenv("DAGSTER_UI_URL", UI)
    data = tmp_path / "orders.json"
    job = _orders_job(data)
    data.write_text("not json")
    failed = _run(job, instance)
    _run(job, instance)  # fails again (as a retry would): the same incident
    cursor, _ = _tick(instance, None)
    assert len(webhook.posts) == 1
    text = _texts(webhook)[0]
    assert text.startswith("[lakehouse] ERROR: run of orders_job failed")
    assert "Step: raw__orders" in text and "JSONDecodeError" in text
    assert f"Run: {failed}" in text and f"{UI}/runs/{failed}" in text

    data.write_text("[1]")
    _run(job, instance)
    _tick(instance, cursor)
    assert len(webhook.posts) == 2
    assert _texts(webhook)[1].startswith("[lakehouse] RESOLVED: run of orders_job failed")


def test_freshness_changes_open_and_resolve_an_incident(
    instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The freshness daemon records a state change as a runless FRESHNESS_STATE_CHANGE event
    (dagster/_daemon/freshness.py); the same call records them here."""
    monkeypatch.setenv("ALERT_URLS", webhook.url())
    key = dg.AssetKey(["raw", "users"])

    def change(previous: FreshnessState, new: FreshnessState) -> None:
        instance._report_runless_asset_event(
            FreshnessStateChange(
                key=key, previous_state=previous, new_state=new, state_change_timestamp=time.time()
            )
        )

    change(FreshnessState.UNKNOWN, FreshnessState.PASS)
    change(FreshnessState.PASS, FreshnessState.WARN)  # WARN alerts are off by default
    cursor, _ = _tick(instance, None)
    assert webhook.posts == []
    change(FreshnessState.WARN, FreshnessState.FAIL)
    cursor, _ = _tick(instance, cursor)
    cursor, _ = _tick(instance, cursor)
    assert _texts(webhook) == [_texts(webhook)[0]] and _texts(webhook)[0].startswith(
        "[lakehouse] ERROR: raw/users is stale (FAIL)"
    )
    assert "Link: http://127.0.0.1:3000/assets/raw/users" in _texts(webhook)[0]
    change(FreshnessState.FAIL, FreshnessState.PASS)
    _tick(instance, cursor)
    assert len(webhook.posts) == 2
    assert _texts(webhook)[1].startswith("[lakehouse] RESOLVED: raw/users is stale (FAIL)")


def test_a_failing_sink_keeps_the_sensor_running_and_is_retried_on_the_next_tick(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    closed = free_port()  # nobody listens there
    down = Webhook(port=closed).url("/hook/s3cretToken42")  # a token in the path, as Slack's
    monkeypatch.setenv("ALERT_URLS", f"{down} {webhook.url()}")
    data = tmp_path / "orders.json"
    job = _orders_job(data)
    data.write_text("[-1]")
    _run(job, instance)
    cursor, summary = _tick(instance, None)
    assert "1 sink(s) failing" in summary and "1 message(s) waiting" in summary
    assert len(webhook.posts) == 1  # the working sink is not held back
    said = capfd.readouterr().err  # the sensor's log
    assert "alert sink json#" in said and "Connection error" in said
    assert "1 message(s) kept, retried on the next tick" in said
    assert "s3cretToken42" not in said and "s3cretToken42" not in (cursor or "")

    # The sink comes up on the same port: the next tick delivers the kept message, once.
    with webhook_server(port=closed) as revived:
        cursor, summary = _tick(instance, cursor)
        cursor, _ = _tick(instance, cursor)
    assert "0 sink(s) failing" in summary and "0 message(s) waiting" in summary
    assert [body["text"].splitlines()[0] for _, body in revived.posts] == [
        "[lakehouse] ERROR: check amounts_not_negative on raw/orders failed"
    ]
    assert [path for path, _ in revived.posts] == ["/hook/s3cretToken42"]
    assert len(webhook.posts) == 1


def test_a_backlog_is_read_in_order_over_several_ticks_without_a_gap(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    data = tmp_path / "orders.json"
    job = _orders_job(data)
    for text in ("[1]", "oops", "[2]", "oops", "[3]"):
        data.write_text(text)
        _run(job, instance)
    now = time.time()
    everything = read_events(instance, {}, now=now, limit=100)
    assert len(everything.records) == 5  # 3 successes, 2 failures
    seen: list[int] = []
    after: dict[str, int] = {}
    for _ in range(10):
        found = read_events(instance, after, now=now, limit=1)
        seen += [r.storage_id for r in found.records]
        after = found.after
    assert seen == [r.storage_id for r in everything.records]


def test_a_run_failed_from_outside_its_worker_is_alerted_and_the_sensor_goes_on(
    tmp_path: Path, instance: dg.DagsterInstance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run queue fails a run its code server cannot start, and run monitoring one whose
    worker died, with a failure event that carries no failure data (only a message): the
    sensor alerts it with that message, and its next ticks (and later runs) go on."""
    monkeypatch.setenv("ALERT_URLS", webhook.url())
    monkeypatch.setenv("DAGSTER_UI_URL", UI)
    data = tmp_path / "orders.json"
    data.write_text("[1]")
    job = _orders_job(data)
    run = instance.create_run_for_job(job, run_config={})
    instance.report_run_failed(run, message="Could not reach user code server.")
    cursor, summary = _tick(instance, None)
    assert "1 alert(s)" in summary
    (text,) = _texts(webhook)
    assert text.startswith("[lakehouse] ERROR: run of orders_job failed")
    assert "Error: Could not reach user code server." in text
    assert f"Run: {run.run_id}" in text

    _run(job, instance)  # the file's next run succeeds: resolved
    cursor, summary = _tick(instance, cursor)
    assert "1 alert(s)" in summary
    assert _texts(webhook)[1].startswith("[lakehouse] RESOLVED: run of orders_job failed")
