"""The alert sensor: run failures, failed checks and freshness changes become one message per
incident, and one more when it recovers.

Each tick reads, from the Dagster instance's event log and past the positions kept in the
sensor's cursor:

* run failures and successes: a job's runs (for the ad hoc asset job: the same asset selection)
  are one incident, opened by a failed run (retries of it add nothing) and resolved by the next
  successful run;
* the asset check evaluations of each run that ended: a check that fails with ERROR severity
  (WARN too with ``ALERT_WARN=1``) opens the incident of that check, its next passing
  evaluation resolves it. A failed check does not fail its run, so this is the only way to
  hear of it; the anomaly checks are asset checks and come this way too. They are read run by
  run (``get_records_for_run``) because the default SQLite event log keeps them in per-run
  shards, where a cross-run position means nothing; a check evaluation reported without a run
  (``report_runless_asset_event``) is not seen;
* freshness state changes (written by the freshness daemon for the assets' freshness
  policies): ``FAIL`` (and ``WARN`` with ``ALERT_WARN=1``) opens, ``PASS`` resolves.

The messages go to the sinks of ``ALERT_URLS`` (see :class:`~assets_project.lib.alerts.
AlertSettings`) and to this sensor's log. A sink that fails keeps its messages in the cursor;
they are sent again on the next tick, and the log says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._utils.error import SerializableErrorInfo

from assets_project.lib.alerts import (
    MAX_ERROR_CHARS,
    Alert,
    AlertSettings,
    AlertState,
    Observation,
    Severity,
    deliver,
    sink_id,
)

ALERT_SENSOR_NAME = "alert_sensor"
BATCH = 200
"""Events of one type read per tick at most (a backlog is worked off over several ticks)."""
FIRST_LOOK_BACK_SECONDS = 3600
"""On its very first tick the sensor reads the events of the last hour, not the whole past."""

RUN_FAILURE: Final = dg.DagsterEventType.RUN_FAILURE
RUN_SUCCESS: Final = dg.DagsterEventType.RUN_SUCCESS
CHECK = dg.DagsterEventType.ASSET_CHECK_EVALUATION
FRESHNESS = dg.DagsterEventType.FRESHNESS_STATE_CHANGE
ASSET_JOB_PREFIX = "__ASSET_JOB"


@dataclass(frozen=True)
class Found:
    """The events read this tick, in log order, and the new read positions."""

    records: list[dg.EventLogRecord]
    after: dict[str, int]


def read_events(
    instance: dg.DagsterInstance, after: dict[str, int], now: float, limit: int = BATCH
) -> Found:
    """Run failures, run successes and freshness changes past ``after`` (by type), in storage
    order (all three are in the event log's index in every storage, SQLite shards included).

    When a type has more than ``limit`` new events, only the events up to its last one read
    are returned for every type, so they are judged in the order they happened.
    """
    start = instance.event_log_storage.get_maximum_record_id() or 0
    batches: dict[str, Sequence[dg.EventLogRecord]] = {}

    def since(event_type: dg.DagsterEventType) -> tuple[int | None, float | None]:
        position = after.get(event_type.value)
        return position, (None if position is not None else now - FIRST_LOOK_BACK_SECONDS)

    for run_event in (RUN_FAILURE, RUN_SUCCESS):
        position, timestamp = since(run_event)
        batches[run_event.value] = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(
                run_event, after_storage_id=position, after_timestamp=timestamp
            ),
            limit=limit,
            ascending=True,
        ).records
    position, timestamp = since(FRESHNESS)
    batches[FRESHNESS.value] = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(FRESHNESS, after_cursor=position, after_timestamp=timestamp),
        limit=limit,
        ascending=True,
    )
    full = [records[-1].storage_id for records in batches.values() if len(records) >= limit]
    horizon = min(full) if full else None
    records = sorted(
        (r for rs in batches.values() for r in rs if horizon is None or r.storage_id <= horizon),
        key=lambda r: r.storage_id,
    )
    positions = dict(after)
    for name, batch in batches.items():
        kept = [r.storage_id for r in batch if horizon is None or r.storage_id <= horizon]
        if kept:
            positions[name] = kept[-1]
        elif name not in positions:
            # First tick, none of this type lately: go on from the log's end as it was.
            positions[name] = min(start, horizon) if horizon is not None else start
    return Found(records=records, after=positions)


def _asset(key: dg.AssetKey) -> str:
    return "/".join(key.path)


def _run_key(run: dg.DagsterRun | None, job_name: str) -> str:
    """The incident key of a run: its job, and for ad hoc asset runs its asset selection."""
    if job_name.startswith(ASSET_JOB_PREFIX) and run is not None and run.asset_selection:
        return f"run:{job_name}:{','.join(sorted(_asset(k) for k in run.asset_selection))}"
    return f"run:{job_name}"


def _numbers(metadata: dict[str, dg.MetadataValue]) -> list[str]:
    """Metadata entries as ``name: value`` lines, numbers first (the failing numbers)."""
    lines: list[tuple[int, str]] = []
    for name, entry in metadata.items():
        value = entry.value
        if isinstance(value, bool | int | float):
            lines.append((0, f"{name}: {value}"))
        elif isinstance(value, str) and len(value) <= 200:
            lines.append((1, f"{name}: {value}"))
    return [line for _, line in sorted(lines, key=lambda item: item[0])]


def _error_text(error: SerializableErrorInfo) -> str:
    """The message of the error that started it all (Dagster wraps user errors in its own)."""
    while error.cause is not None or error.context is not None:
        error = error.cause or error.context  # type: ignore[assignment]
    return error.message.strip()


def _run_observation(
    instance: dg.DagsterInstance, record: dg.EventLogRecord, settings: AlertSettings
) -> Observation:
    entry = record.event_log_entry
    event = entry.get_dagster_event()
    job = event.job_name or entry.job_name or "?"
    run = instance.get_run_by_id(entry.run_id)
    key = _run_key(run, job)
    assets = sorted(_asset(k) for k in (run.asset_selection or ())) if run else []
    if event.event_type != RUN_FAILURE:
        return Observation(
            key=key,
            failing=False,
            subject=f"run of {job}",
            run_id=entry.run_id,
            details=(f"Job: {job}", f"Succeeded: run {entry.run_id}"),
            link=settings.run_url(entry.run_id),
            timestamp=entry.timestamp,
        )
    # None for a run failed from outside its worker (`instance.report_run_failed`): the run
    # queue when the code server cannot start it, run monitoring, a cancellation.
    failure = event.job_failure_data
    error, step = None, None
    if failure is not None and failure.first_step_failure_event is not None:
        step = failure.first_step_failure_event.step_key
        step_error = failure.first_step_failure_event.step_failure_data.error
        error = _error_text(step_error) if step_error else None
    if error is None and failure is not None and failure.error is not None:
        error = _error_text(failure.error)
    if error is None:
        reason = failure.failure_reason if failure is not None else None
        error = entry.message or event.message or (reason.value if reason else "")
    subject = f"run of {job} failed" + (f" ({', '.join(assets)})" if assets else "")
    details = [f"Job: {job}"]
    if assets:
        details.append(f"Assets: {', '.join(assets)}")
    if step:
        details.append(f"Step: {step}")
    details.append(f"Error: {error.strip()[:MAX_ERROR_CHARS]}")
    return Observation(
        key=key,
        failing=True,
        subject=subject,
        run_id=entry.run_id,
        details=tuple(details),
        link=settings.run_url(entry.run_id),
        timestamp=entry.timestamp,
    )


def _check_observation(record: dg.EventLogRecord, settings: AlertSettings) -> Observation:
    entry = record.event_log_entry
    evaluation = entry.get_dagster_event().asset_check_evaluation_data
    asset = _asset(evaluation.asset_key)
    severity: Severity = "WARN" if evaluation.severity == dg.AssetCheckSeverity.WARN else "ERROR"
    failing = not evaluation.passed and settings.alerting(severity)
    details = [f"Asset: {asset}", f"Check: {evaluation.check_name}", f"Severity: {severity}"]
    if evaluation.description:
        details.append(f"Result: {evaluation.description}")
    details += _numbers(dict(evaluation.metadata))
    verdict = "failed" if failing else "passed"
    return Observation(
        key=f"check:{asset}:{evaluation.check_name}",
        # A WARN failure while WARN alerts are off neither opens nor resolves an incident.
        failing=failing,
        subject=f"check {evaluation.check_name} on {asset} {verdict}",
        severity=severity,
        run_id=entry.run_id or None,
        details=tuple(details),
        link=settings.run_url(entry.run_id) if entry.run_id else settings.asset_url(asset),
        timestamp=entry.timestamp,
    )


def _freshness_observation(
    instance: dg.DagsterInstance, record: dg.EventLogRecord, settings: AlertSettings
) -> Observation | None:
    entry = record.event_log_entry
    change = entry.get_dagster_event().event_specific_data
    assert isinstance(change, FreshnessStateChange)
    severity: Severity = "ERROR" if change.new_state == FreshnessState.FAIL else "WARN"
    failing = change.new_state == FreshnessState.FAIL or (
        change.new_state == FreshnessState.WARN and settings.warn
    )
    if not failing and change.new_state != FreshnessState.PASS:
        return None  # UNKNOWN, NOT_APPLICABLE, or a WARN nobody asked to hear of
    asset = _asset(change.key)
    latest = instance.get_latest_materialization_event(change.key)
    details = [f"Asset: {asset}", f"Freshness: {change.previous_state} -> {change.new_state}"]
    if latest is not None:
        details.append(f"Last materialization: run {latest.run_id}")
    return Observation(
        key=f"freshness:{asset}",
        failing=failing,
        subject=f"{asset} is {'stale' if failing else 'fresh'} ({change.new_state.value})",
        severity=severity,
        run_id=latest.run_id if latest is not None else None,
        details=tuple(details),
        link=settings.asset_url(asset),
        timestamp=change.state_change_timestamp,
    )


def observations(
    instance: dg.DagsterInstance,
    records: list[dg.EventLogRecord],
    state: AlertState,
    settings: AlertSettings,
) -> Iterator[Observation]:
    """What each event says about its incident key (events that say nothing are skipped)."""
    for record in records:
        event = record.event_log_entry.get_dagster_event()
        if event.event_type in (RUN_SUCCESS, RUN_FAILURE):
            checks = instance.get_records_for_run(record.event_log_entry.run_id, of_type=CHECK)
            for check in checks.records:
                yield _check_observation(check, settings)
        if event.event_type == RUN_SUCCESS:
            job = event.job_name or record.event_log_entry.job_name or ""
            if any(key.startswith(f"run:{job}") for key in state.open):
                yield _run_observation(instance, record, settings)
        elif event.event_type == RUN_FAILURE:
            yield _run_observation(instance, record, settings)
        elif event.event_type == FRESHNESS:
            found = _freshness_observation(instance, record, settings)
            if found is not None:
                yield found


def evaluate(context: dg.SensorEvaluationContext) -> str:
    """One tick: read, judge, queue, deliver, store the cursor. Returns a summary."""
    settings = AlertSettings.from_env()
    redact = settings.redactor()
    state = AlertState.from_cursor(context.cursor)
    found = read_events(context.instance, state.after, now=time.time())
    sinks = [sink_id(url) for url in settings.urls]
    new: list[Alert] = []
    for observation in observations(context.instance, found.records, state, settings):
        clean = replace(
            observation,
            subject=redact(observation.subject),
            details=tuple(redact(line) for line in observation.details),
        )
        alert = state.observe(clean)
        if alert is None:
            continue
        new.append(alert)
        state.enqueue(alert, sinks)
        # The log sink: every message, whatever ALERT_URLS says.
        if alert.status == "open":
            context.log.warning(f"ALERT {alert.body}")
        else:
            context.log.info(f"ALERT {alert.body}")
    if state.dropped:
        context.log.error(f"{state.dropped} undelivered alert(s) dropped (the outbox was full)")
    failures = deliver(state, settings)
    for failure in failures:
        context.log.warning(
            f"alert sink {failure.sink} failed: {failure.error}; {failure.waiting} message(s) "
            "kept, retried on the next tick"
        )
    state.after = found.after
    context.update_cursor(state.to_cursor())
    return (
        f"{len(found.records)} event(s) read, {len(new)} alert(s), {len(state.open)} incident(s) "
        f"open, {len(state.outbox)} message(s) waiting, {len(failures)} sink(s) failing"
    )


@dg.sensor(
    name=ALERT_SENSOR_NAME,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends one message per incident (failed runs, failed ERROR checks, stale assets) and "
        "one when it recovers, to the sinks of ALERT_URLS and to this log."
    ),
)
def alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """See the module docstring."""
    return dg.SkipReason(evaluate(context))
