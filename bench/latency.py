"""Drop-to-mart latency under the real daemon, the way ``make dev`` runs the project.

``make dev`` is started in a scratch data folder (its demo drops, its ``dagster dev`` with the
daemon, the shipped sensors and settings). Once the demo is ingested and the marts are built
(the warm instance), small user-event files are dropped into ``landing/user_events/`` one at a
time, as a producer would (written beside the folder, then renamed into it). For each drop the
harness follows the runs in the instance and records:

- **sensor**: from the rename to the creation of the file's ingestion run (the file sensor's
  interval, the settle rule);
- **launch**: from the run's creation to its start (queue, run worker start, code loading);
- **ingest run**: the ingestion run from start to end (the raw step and the raw checks);
- **automation**: from the ingestion run's end to the creation of the run that builds the marts
  (the automation sensor's interval and tick);
- **dbt launch**: that run's creation to its start;
- **to marts**: that run's start to the last materialization of the marts the events feed;
- **total**: from the rename to that materialization.

A drop counts only when the marts' run really carries it: every distinct event id the drop
committed to the raw table is in ``stg_user_events`` after that run (checked in the warehouse),
and the mart run was created after the ingestion run ended.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
SOURCE = "user_events"
#: The marts that user events feed (the drop must reach these).
EVENT_MARTS = ("agg_events_per_minute", "fct_user_daily_activity")
PHASES = ("sensor", "launch", "ingest run", "automation", "dbt launch", "to marts", "total")


@dataclass
class DropTiming:
    """One drop's way from the landing folder to the marts (seconds since the epoch)."""

    file: str
    events: int
    landed: float
    ingest_created: float
    ingest_started: float
    ingest_ended: float
    dbt_created: float
    dbt_started: float
    marts_at: float
    staged: int

    def phases(self) -> dict[str, float]:
        return {
            "sensor": self.ingest_created - self.landed,
            "launch": self.ingest_started - self.ingest_created,
            "ingest run": self.ingest_ended - self.ingest_started,
            "automation": self.dbt_created - self.ingest_ended,
            "dbt launch": self.dbt_started - self.dbt_created,
            "to marts": self.marts_at - self.dbt_started,
            "total": self.marts_at - self.landed,
        }


@dataclass
class LatencyCase:
    """The drops of one run of the harness, with the settings they ran under."""

    label: str
    settings: dict[str, str]
    warmup_s: float
    drops: list[DropTiming] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def make_dev(
    data_dir: Path, env: dict[str, str], log_path: Path
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``make dev`` in its own process group (and its URL), stopped (SIGINT, then SIGKILL)
    on exit."""
    port = _free_port()
    with log_path.open("w") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "dev", f"DATA_DIR={data_dir}", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process, f"http://127.0.0.1:{port}"
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(what: str, until: Callable[[], Any], timeout: float, process: subprocess.Popen) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make dev exited ({process.returncode}) while waiting for {what}")
        value = until()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


class Watcher:
    """Reads the instance ``make dev`` writes (its SQLite storage under DAGSTER_HOME)."""

    def __init__(self, home: Path) -> None:
        import dagster as dg

        self.dg = dg
        self.instance = dg.DagsterInstance.from_config(str(home))
        self.mart_keys = [dg.AssetKey(["marts", name]) for name in EVENT_MARTS]

    def resolve_mart_keys(self) -> None:
        """The mart asset keys as the translator names them (by their last path component)."""
        keys = {key.path[-1]: key for key in self.instance.all_asset_keys()}
        missing = [name for name in EVENT_MARTS if name not in keys]
        if missing:
            raise RuntimeError(f"no asset for {missing} in the instance")
        self.mart_keys = [keys[name] for name in EVENT_MARTS]

    def busy(self) -> bool:
        dg = self.dg
        statuses = [
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING,
        ]
        return bool(self.instance.get_runs(filters=dg.RunsFilter(statuses=statuses), limit=1))

    def marts_built(self) -> bool:
        try:
            self.resolve_mart_keys()
        except RuntimeError:
            return False
        return all(self.instance.get_latest_materialization_event(k) for k in self.mart_keys)

    def ingest_run(self, relative: str) -> Any | None:
        records = self.instance.get_run_records(
            filters=self.dg.RunsFilter(tags={"source_file": relative}), limit=1
        )
        return records[0] if records else None

    def marts_after(self, after: float) -> tuple[str, float] | None:
        """The run and time of the last of the event marts' materializations after ``after``,
        once each of them has one from the same run."""
        events = [self.instance.get_latest_materialization_event(k) for k in self.mart_keys]
        if not all(e is not None and e.timestamp > after for e in events):
            return None
        runs = {e.run_id for e in events if e is not None}
        if len(runs) != 1:
            return None
        return runs.pop(), max(e.timestamp for e in events if e is not None)

    def record(self, run_id: str) -> Any:
        record = self.instance.get_run_record_by_id(run_id)
        assert record is not None
        return record


def _run_times(record: Any) -> tuple[float, float, float | None]:
    return record.create_timestamp.timestamp(), record.start_time, record.end_time


def _staged(warehouse: Path, lake: Path, relative: str) -> tuple[int, int]:
    """Distinct event ids the drop committed to the raw table, and how many are in staging."""
    from assets_project.lib.lake import delta_table

    raw = delta_table(str(lake / "raw" / SOURCE)).to_pyarrow_table(columns=["event_id", "_source"])
    ids = raw.filter(pc.equal(raw["_source"], relative)).select(["event_id"])
    for _attempt in range(240):
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                con.register("drop_ids", ids)
                committed, staged = con.execute(
                    "select count(distinct d.event_id), count(distinct s.event_id) from drop_ids d"
                    " left join main.stg_user_events s on s.event_id = d.event_id"
                ).fetchone() or (0, 0)
                return int(committed), int(staged)
        except duckdb.IOException:  # the writer (a dbt run) holds the file: try again
            time.sleep(0.5)
    raise TimeoutError("the warehouse stayed locked for 2 minutes")


def _drop(data_dir: Path, scratch: Path, index: int, events: int, seed: int) -> tuple[str, int]:
    """Generate one user-events file of ``events`` lines and rename it into the landing folder
    with a fresh modification time, as a producer that just finished writing it would."""
    out = scratch / f"gen-{index}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "assets_project.demo",
            "generate",
            "--size",
            str(events * 2),
            "--seed",
            str(seed + index),
            "--files",
            "2",
            "--ends-at",
            "now",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    source = sorted((out / SOURCE).glob("*"))[0]
    lines = sum(1 for _ in source.open("rb"))
    name = f"latency-{index:03d}-{source.name}"
    staging = data_dir / f".latency-{name}"
    shutil.move(source, staging)
    os.utime(staging)
    os.replace(staging, data_dir / "landing" / SOURCE / name)
    shutil.rmtree(out)
    return f"{SOURCE}/{name}", lines


def run_case(
    drops: int,
    events: int,
    work: Path,
    log: Callable[[str], None],
    *,
    label: str = "shipped defaults",
    settings: dict[str, str] | None = None,
    seed: int = 1000,
    demo_size: int = 5000,
) -> LatencyCase:
    """Start ``make dev`` in a fresh data folder under ``work``, wait for the warm state, then
    time ``drops`` drops of ``events`` user events each."""
    settings = dict(settings or {})
    data_dir = work / "data"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "DATA_DIR")}
    env.update(settings)
    env["DEMO_SIZE"] = str(demo_size)
    home = data_dir / "dagster_home"
    case = LatencyCase(label=label, settings=settings, warmup_s=0.0)
    start = time.monotonic()
    with make_dev(data_dir, env, work / "dagster-dev.log") as (process, url):
        # The instance is opened once the webserver answers: `dagster dev` has created (and
        # migrated) its storage by then; opening it earlier races that creation.
        _wait("the webserver", lambda: _answers(url + "/server_info"), 600, process)
        watcher = Watcher(home)
        log("waiting for the demo's marts ...")
        _wait("marts from the demo drops", watcher.marts_built, 1200, process)
        _wait_quiet(watcher, process)
        case.warmup_s = time.monotonic() - start
        log(f"warm after {case.warmup_s:.0f} s")
        for index in range(drops):
            timing = _time_drop(watcher, process, data_dir, work, index, events, seed)
            case.drops.append(timing)
            log(
                f"drop {index + 1}/{drops}: {timing.file} ({timing.events} lines): "
                + ", ".join(f"{k} {v:.1f}" for k, v in timing.phases().items())
            )
    return case


def _time_drop(
    watcher: Watcher,
    process: subprocess.Popen,
    data_dir: Path,
    work: Path,
    index: int,
    events: int,
    seed: int,
) -> DropTiming:
    """Drop one file on the quiet instance and follow it to the marts."""
    relative, lines = _drop(data_dir, work, index, events, seed)
    landed = time.time()
    _wait(f"a run for {relative}", lambda: watcher.ingest_run(relative), 600, process)
    ingest = _wait(
        f"the end of {relative}'s run",
        lambda: (r := watcher.ingest_run(relative)) and r.end_time and r,
        900,
        process,
    )
    if ingest.dagster_run.status != watcher.dg.DagsterRunStatus.SUCCESS:
        raise RuntimeError(f"{relative}'s run ended {ingest.dagster_run.status}")
    created, started, ended = _run_times(ingest)
    assert ended is not None
    run_id, marts_at = _wait("the marts", lambda: watcher.marts_after(ended), 900, process)
    dbt_created, dbt_started, _ = _run_times(watcher.record(run_id))
    _wait_quiet(watcher, process)
    committed, staged = _staged(data_dir / "warehouse.duckdb", data_dir / "lake", relative)
    if dbt_created < ended or staged != committed:
        raise RuntimeError(
            f"{relative}: {staged} of {committed} committed event ids in staging after run {run_id}"
        )
    return DropTiming(
        relative,
        lines,
        landed,
        created,
        started,
        ended,
        dbt_created,
        dbt_started,
        marts_at,
        staged,
    )


def _wait_quiet(watcher: Watcher, process: subprocess.Popen, quiet_s: float = 35.0) -> None:
    """Until no run is queued or in progress for ``quiet_s`` (longer than a sensor interval)."""
    since = time.monotonic()
    deadline = since + 1200
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make dev exited ({process.returncode})")
        if watcher.busy():
            since = time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(1.0)
    raise TimeoutError("the instance never became quiet")


def format_case(cases: list[LatencyCase]) -> str:
    """One table: the median of each phase per settings, and every drop's total."""
    lines = [
        "| settings | drops | events per drop | "
        + " | ".join(f"{p} s" for p in PHASES)
        + " | totals s |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in PHASES) + " | --- |",
    ]
    for case in cases:
        phases = [d.phases() for d in case.drops]
        medians = [statistics.median(p[name] for p in phases) for name in PHASES]
        events = statistics.median(d.events for d in case.drops)
        totals = ", ".join(f"{p['total']:.0f}" for p in phases)
        lines.append(
            f"| {case.label} | {len(case.drops)} | {events:,.0f} | "
            + " | ".join(f"{m:.1f}" for m in medians)
            + f" | {totals} |"
        )
    lines.append("")
    lines.append("Medians over the drops; each drop landed on a quiet, warm instance.")
    return "\n".join(lines) + "\n"
