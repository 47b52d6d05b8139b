"""File-drop ingestion: one raw asset and one sensor per source contract.

A file dropped into ``data/landing/<source>/`` (or, with ``LANDING_URI=s3://bucket/prefix``,
an object put under ``s3://bucket/prefix/<source>/``; see
:mod:`assets_project.lib.landing_s3`) is picked up by ``<source>_file_sensor`` once it
is complete (settled, or marked ``.done``; see :mod:`assets_project.lib.landing`), which
requests one run per file (run key from path, size and modification time). The run validates
the file against the source's contract, appends valid rows to ``lake/raw/<source>`` and
rejected rows to ``lake/dlq/<source>``, then moves the file to ``data/archive/<source>/``; a
file that cannot be read at all goes to ``data/quarantine/<source>/`` with a ``.reason`` file
beside it, and a file that changed while it was read stays in landing with nothing committed.

A run that fails (a full disk, a lake outage, a bug) leaves its file in landing. The sensor
finds that run by its run key, requests the file again after a backoff, and after
``LANDING_MAX_ATTEMPTS`` failed runs moves it to the quarantine with the last error as its
reason (:class:`~assets_project.lib.landing.LandingPolicy`).
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import dagster as dg

from assets_project.defs.ingestion.raw import (
    INGESTION_RETRY_POLICY,
    INGESTION_RUN_EXECUTION,
    LANDING_ERRORS,
    Drop,
    FileDropConfig,
    Landing,
    drop_name,
    landing_of,
    materialize_raw,
    raw_asset,
)
from assets_project.defs.intervals import FILE_SENSOR_INTERVAL_SECONDS
from assets_project.defs.resources import LakeResource, landing_on_s3
from assets_project.defs.sources import contracts_with, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.landing import LandingPolicy
from assets_project.lib.landing_s3 import ObjectChangedError


def build_file_drop_asset(
    contract: Contract, retry_policy: dg.RetryPolicy | None = INGESTION_RETRY_POLICY
) -> dg.AssetsDefinition:
    """The raw asset of one file-drop source (``retry_policy``: its in-run step retries)."""

    @raw_asset(
        contract,
        retry_policy=retry_policy,
        description=f"Raw Delta table `lake/raw/{contract.name}` (append-only, partitioned "
        f"by the {contract.partition_granularity} of `{contract.partition_by}`); rejected "
        f"records go to `lake/dlq/{contract.name}`.",
        kinds={"delta", "duckdb"},
        channel="file",
    )
    def _raw_asset(
        context: dg.AssetExecutionContext, config: FileDropConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        return materialize_raw(
            context,
            config,
            lake,
            contract,
            requested="files",
            service="files",
            configured=False,
            read_service=dict,  # never called: the only channel is files
        )

    return _raw_asset


RUN_KEY_TAG = "dagster/run_key"
"""The tag the sensor daemon puts on every run it creates for a request with a run key
(``dagster._daemon.sensor._create_sensor_run``); the file sensors find their runs by it."""
LOST_RUN_SECONDS = 600.0
"""A requested run that cannot be found this long after the request (deleted, say) counts as
a failed attempt; the daemon creates a tick's runs right after the evaluation."""
_ERROR_CHARS = 1000
_FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass
class FileAttempts:
    """What the sensor's cursor remembers of one file (by its identity, ``DropFile.run_key``)."""

    attempt: int
    """Runs requested for the file so far."""
    requested_at: float
    """When the latest run was requested."""
    retry_at: float | None = None
    """Set once the latest run has failed: when the next run may be requested."""
    error: str | None = None
    """The latest failed run's error."""


def attempt_run_key(source: str, file_key: str, attempt: int) -> str:
    """The run key of a file's ``attempt``-th run.

    The first run keeps the plain key, so a lost cursor requests a file under the key the
    daemon has seen before (and skips it) instead of ingesting it twice.
    """
    key = f"{source}:{file_key}"
    return key if attempt == 1 else f"{key}:attempt{attempt}"


def load_cursor(cursor: str | None, now: float) -> dict[str, FileAttempts]:
    """The per-file attempts in a sensor cursor (an older cursor lists the requested keys)."""
    if not cursor:
        return {}
    data = json.loads(cursor)
    if isinstance(data, list):
        return {key: FileAttempts(attempt=1, requested_at=now) for key in data}
    return {key: FileAttempts(**value) for key, value in data["files"].items()}


def dump_cursor(files: dict[str, FileAttempts]) -> str:
    """The cursor for ``files`` (only files still in the landing folder are kept)."""
    return json.dumps({"files": {k: asdict(v) for k, v in sorted(files.items())}})


def run_error(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """The error a failed or canceled run ended with, from its event log.

    A step failure's user error is preferred to the run failure, which only names the step;
    Dagster's own wrappers (``DagsterExecutionStepExecutionError``) are unwrapped.
    """
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"run {run.run_id} was canceled"
    entries = instance.all_logs(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE},
    )
    steps_first = sorted(
        (e.dagster_event for e in entries if e.dagster_event is not None),
        key=lambda event: event.event_type != dg.DagsterEventType.STEP_FAILURE,
    )
    for event in steps_first:
        error = getattr(event.event_specific_data, "error", None)
        if error is None:
            continue
        while error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        message = error.message.strip() or error.cls_name
        return message if len(message) <= _ERROR_CHARS else message[:_ERROR_CHARS] + "..."
    return f"run {run.run_id} failed without a recorded error"


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else text
    return line if len(line) <= 300 else line[:300] + "..."


def _latest_run_failure(
    instance: dg.DagsterInstance,
    run_key: str,
    landing: Landing,
    drop: Drop,
    attempts: FileAttempts,
    now: float,
) -> str | None:
    """Why the latest run of ``drop`` did not take it out of landing; ``None``: not ended yet.

    A queued, starting or running run is never followed by another request for the file.
    """
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    if not runs:
        waited = now - attempts.requested_at
        if waited < LOST_RUN_SECONDS:
            return None
        return f"no run with run key {run_key} was found {waited:.0f}s after it was requested"
    run = runs[0]
    if run.status in _FAILED:
        return run_error(instance, run)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        return None
    if not landing.present(drop):
        return None  # archived after the scan: the run took it
    return f"run {run.run_id} succeeded but left the file in the landing zone"


@dataclass(frozen=True)
class _Step:
    """What the sensor does about one ready file on one evaluation."""

    keep: FileAttempts | None  # remembered in the cursor; None: the file left landing
    request: int | None = None  # the attempt to request now, if any
    note: str | None = None  # said in the skip reason


def _step(
    context: dg.SensorEvaluationContext,
    landing: Landing,
    contract: Contract,
    drop: Drop,
    entry: FileAttempts | None,
    rules: LandingPolicy,
    now: float,
) -> _Step:
    """Request a new file, wait for a run, schedule a retry, or quarantine after the last one."""
    if entry is None:
        return _Step(FileAttempts(attempt=1, requested_at=now), request=1)
    name, n, most = drop_name(drop), entry.attempt, rules.max_attempts
    if entry.retry_at is None:
        run_key = attempt_run_key(contract.name, drop.run_key, n)
        error = _latest_run_failure(context.instance, run_key, landing, drop, entry, now)
        if error is None:  # not ended: never requested twice
            return _Step(entry, note=f"{name}: attempt {n}/{most} requested" if n > 1 else None)
        delay = rules.backoff(n)
        entry = FileAttempts(n, entry.requested_at, retry_at=now + delay, error=error)
        if n < most:
            context.log.warning(
                f"{drop.relative}: attempt {n}/{most} failed ({error}), retry after {delay:.0f}s"
            )
    error = entry.error or "unknown error"
    if n >= most:
        reason = f"{drop.relative}: quarantined after {n} failed attempts; last error: {error}"
        try:
            target = landing.quarantine(drop, reason)
        except ObjectChangedError:
            # Replaced since the scan: the failed version is gone, the new one is a new drop.
            return _Step(None, note=f"{name}: replaced by a new version, not quarantined")
        except LANDING_ERRORS as exc:
            return _Step(entry, note=f"{name}: could not be quarantined ({exc}), will retry")
        context.log.warning(f"{reason} -> {target}")
        return _Step(
            None, note=f"{name}: quarantined after {n} failed attempts: {_first_line(error)}"
        )
    retry_at = entry.retry_at if entry.retry_at is not None else now
    if now >= retry_at:
        context.log.info(f"{drop.relative}: requesting attempt {n + 1}/{most}")
        return _Step(FileAttempts(attempt=n + 1, requested_at=now), request=n + 1)
    return _Step(
        entry,
        note=f"{name}: attempt {n}/{most} failed ({_first_line(error)}), "
        f"retry after {retry_at - now:.0f}s",
    )


def build_file_drop_sensor(
    contract: Contract,
    policy: LandingPolicy | None = None,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """The sensor that requests one ingestion run per ready file of one source.

    A file whose run failed is requested again after ``policy.backoff`` (a new run key,
    ``<key>:attempt<n>``), and after ``policy.max_attempts`` failed runs the sensor moves it to
    the quarantine itself, with the last run's error as its ``.reason``. The move happens here
    because the sensor is the one place that knows the count and that no run of the file is
    queued or running (the last one has ended); it is one rename and one small write per file,
    once, so an evaluation stays fast and bounded (one run lookup per file awaiting a run), and
    a run requested only to move the file could fail for the same reason the ingestion did.
    ``policy`` defaults to :meth:`LandingPolicy.from_env` at each evaluation; ``clock`` gives
    the evaluation's "now" (tests move it instead of sleeping).
    """
    key = raw_asset_key(contract.name)
    op_name = key.to_python_identifier()
    where = "LANDING_URI" if landing_on_s3() else "data/landing"

    @dg.sensor(
        name=f"{contract.name}_file_sensor",
        description=f"Requests a run of raw/{contract.name} for each new file in "
        f"{where}/{contract.name}/ once it is complete; retries a failed file with "
        "backoff, then quarantines it with the error.",
        target=[key],
        minimum_interval_seconds=FILE_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        rules = policy or LandingPolicy.from_env()
        now = clock()
        known = load_cursor(context.cursor, now)
        landing = landing_of(context, lake, contract.name)
        ready, notes = landing.scan(now, rules.empty_grace_seconds)
        files: dict[str, FileAttempts] = {}
        requests: list[dg.RunRequest] = []
        for drop in ready:
            step = _step(context, landing, contract, drop, known.get(drop.run_key), rules, now)
            if step.keep is not None:
                files[drop.run_key] = step.keep
            if step.note:
                notes.append(step.note)
            if step.request is not None:
                requests.append(
                    dg.RunRequest(
                        run_key=attempt_run_key(contract.name, drop.run_key, step.request),
                        run_config=dg.RunConfig(
                            ops={op_name: FileDropConfig(path=drop.relative)},
                            execution=INGESTION_RUN_EXECUTION,
                        ),
                        tags={"source_file": drop.relative},
                    )
                )
        # Only files still in the landing folder are remembered: taken ones are archived.
        skip = None if requests else "; ".join(notes) or "no new files"
        return dg.SensorResult(run_requests=requests, cursor=dump_cursor(files), skip_reason=skip)

    return _sensor


FILE_CONTRACTS = contracts_with("files")
# Sources fed by files only; a source with another channel too has its raw asset in that
# channel's module, which runs ``ingest_file_drops`` when a sensor names a file.
file_drop_assets = [build_file_drop_asset(c) for c in FILE_CONTRACTS if c.channels == ("files",)]
file_drop_sensors = [build_file_drop_sensor(c) for c in FILE_CONTRACTS]
