"""End-to-end benchmarks of the whole pipeline, each case next to its honest baselines.

Cases (``python -m bench pipeline``; ``make bench`` runs them at 1e5 and 1e6 events, ``--large``
adds 1e7):

end to end
    The demo generator's drops (users, products, orders as CSV, user events as JSON lines, 10
    files per source) → raw Delta → dbt staging → marts, three ways: ``ours`` runs the code
    location's ``Definitions`` as deployed (the implicit asset job with every asset and check,
    ``execute_in_process`` on a persistent SQLite instance, as a run worker does); ``floor`` is
    one DuckDB SQL script (``bench/floor.sql``); ``pandas`` the tutorial way. Both baselines
    must produce exactly our mart rows (``bench.marts.compare_marts``) or the case fails.
dbt
    The dbt part alone on the same raw lake, from an empty warehouse: plain ``dbt build``
    versus the Dagster dbt assets (``dbt build`` through dagster-dbt, with its events, asset
    checks and the row counts and column types we attach).
incremental
    After a full load at the largest size, 1 % new and late user events arrive as one more
    file; the same job runs again. Compared with a full refresh (everything from scratch) of
    the same final files, and checked to give the same marts.
start-up
    Wall time of a fresh interpreter that imports and validates the ``Definitions`` (what
    ``dagster dev`` and every run worker pay), next to bare Python and ``import dagster``.

Every run is a fresh process (``bench.measure``): the worker's imports and setup are not timed,
its work is; memory is the peak of the sampled RSS sum over the worker and its children (dbt).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import RunTimes, WorkerRun, emit, run_worker

log = logging.getLogger("bench.pipeline")

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = REPO_ROOT / "dbt_project"
FILES = 10
DEFAULT_SIZES = (100_000, 1_000_000)
LARGE_SIZE = 10_000_000
E2E_IMPLEMENTATIONS = ("ours", "floor", "pandas")
DBT_IMPLEMENTATIONS = ("dbt build", "dagster-dbt")
DELTA_FILE = "user_events_delta_0001.jsonl"
DELTA_SHARE = 0.01
_SERVICES_ENV = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")


# --------------------------------------------------------------------------- inputs


def generated_input(work: Path, events: int, seed: int) -> Path:
    """The demo drops for ``events`` events under ``work`` (generated once, then reused)."""
    from assets_project.demo.generate import MANIFEST_NAME, generate

    folder = work / f"input-{events}-{seed}"
    manifest = folder / MANIFEST_NAME
    if manifest.exists():
        return folder
    log.info("generating %s events into %s ...", f"{events:,}", folder)
    generate(folder, size=events, seed=seed, files=FILES, overwrite=True)
    return folder


def link_tree(source: Path, target: Path) -> None:
    """Hard-link copy of the drop folders (ingestion moves files: the input stays intact)."""
    for folder in (p for p in source.iterdir() if p.is_dir()):
        shutil.copytree(folder, target / folder.name, copy_function=os.link)


def write_delta_events(path: Path, events: int, seed: int) -> int:
    """``DELTA_SHARE`` of ``events`` new user events as one more JSON-lines drop.

    Half are new (the hours after the generated month), half late: 2-9 days before its end,
    inside the incremental models' lookback and window grace, so an incremental run must give
    the marts a full refresh gives. Users exist in every generated size (ids 1 .. events/20).
    """
    from assets_project.lib.contracts import load_contract

    event_types = load_contract("user_events").enum("event_type")
    rng = random.Random(seed)
    end = 1_769_904_000  # 2026-02-01T00:00:00Z, where the generated month ends
    users = max(50, events // 20)
    count = max(1, int(events * DELTA_SHARE))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            if i % 2:
                at = end + rng.randrange(0, 12 * 3600)
            else:
                at = end - rng.randrange(2 * 86_400, 9 * 86_400)
            kind = rng.choice(event_types)
            properties: dict[str, Any] = {"page": f"/p/{rng.randrange(1, 500)}"}
            if kind == "purchase":
                quantity = rng.randrange(1, 4)
                properties = {
                    "product_id": rng.randrange(1, 500),
                    "quantity": quantity,
                    "amount": round(rng.randrange(100, 50_000) / 100 * quantity, 2),
                    "currency": "EUR",
                }
            record = {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "user_id": rng.randrange(1, users + 1),
                "event_type": kind,
                "event_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                "properties": properties,
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return count


def lake_env(data: Path) -> dict[str, str]:
    """Environment of the code location for a data folder (no database, no broker)."""
    return {
        "DATA_DIR": str(data),
        "LAKE_URI": str(data / "lake"),
        "WAREHOUSE_PATH": str(data / "warehouse.duckdb"),
        "LANDING_SETTLE_SECONDS": "0",
        "DAGSTER_HOME": str(data.parent / "dagster_home"),
    }


def _clear_services() -> None:
    for name in _SERVICES_ENV:
        os.environ.pop(name, None)


# --------------------------------------------------------------------------- workers


def _job_and_instance(data: Path) -> tuple[Any, Any]:
    """The code location's implicit asset job on ``data`` and a fresh SQLite instance beside it."""
    _clear_services()
    os.environ.update(lake_env(data))
    import dagster as dg

    from assets_project.definitions import defs

    home = data.parent / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return defs.resolve_implicit_global_asset_job_def(), dg.DagsterInstance.local_temp(
        tempdir=str(home)
    )


def _worker_ours(data: Path, profile: Path | None) -> dict[str, Any]:
    """Run the code location's assets and their checks, as a run of the implicit asset job.

    All but the lake maintenance (compaction, vacuum): the deployment runs it weekly
    (``weekly_lake_maintenance_schedule``), not on the way from new data to the marts, and
    neither baseline keeps a lake to maintain.
    """
    job, instance = _job_and_instance(data)
    from assets_project.definitions import defs
    from assets_project.defs.lake.maintenance import maintenance_assets

    weekly = {key for asset in maintenance_assets for key in asset.keys}
    selection = [key for key in defs.resolve_all_asset_keys() if key not in weekly]
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, asset_selection=selection, raise_on_error=True
    )
    seconds = time.perf_counter() - started
    if profiler is not None and profile is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    steps = {
        s.step_key: round(s.end_time - s.start_time, 3)
        for s in instance.get_run_step_stats(result.run_id)
        if s.end_time and s.start_time
    }
    return {
        "seconds": seconds,
        "success": result.success,
        "steps": steps,
        "dbt_nodes": _dbt_node_seconds(result.run_id),
    }


def _dbt_node_seconds(run_id: str) -> dict[str, float]:
    """Each dbt node's execution time in a run's dbt build, from dbt's ``run_results.json``.

    dagster-dbt gives every invocation a target folder named ``<op>-<run id[:7]>-<uuid[:7]>``.
    """
    found: dict[str, float] = {}
    for results in (DBT_DIR / "target").glob(f"*-{run_id[:7]}-*/run_results.json"):
        for node in json.loads(results.read_text())["results"]:
            found[node["unique_id"]] = round(node["execution_time"], 3)
    return found


def _worker_baseline(implementation: str, landing: Path, out: Path) -> dict[str, Any]:
    from bench import marts

    run: Callable[[Path, Path], None] = {"floor": marts.run_floor, "pandas": marts.run_pandas}[
        implementation
    ]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run(landing, out)
    return {"seconds": time.perf_counter() - started}


def _dbt_executable() -> str:
    from assets_project.defs.dbt.project import dbt_executable

    return dbt_executable()


def _dbt_command(verb: str, data: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """A dbt command line in the project, and its environment for the lake under ``data``."""
    command = [
        _dbt_executable(),
        verb,
        *args,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
    ]
    return command, {**os.environ, **lake_env(data)}


def _worker_dbt_plain(data: Path, target: Path) -> dict[str, Any]:
    """``dbt build`` in the project, the way one runs it by hand (partial parsing kept)."""
    command, env = _dbt_command("build", data, "--target-path", str(target))
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{done.stdout[-3000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = {r["unique_id"]: round(r["execution_time"], 3) for r in results}
    return {"seconds": seconds, "nodes": nodes}


def _worker_dbt_dagster(data: Path) -> dict[str, Any]:
    """The dbt assets (and their dbt-test checks) alone, through the code location's job."""
    job, instance = _job_and_instance(data)
    from assets_project.defs.dbt.assets import shop_dbt_models

    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, asset_selection=list(shop_dbt_models.keys), raise_on_error=True
    )
    seconds = time.perf_counter() - started
    (step,) = [
        s for s in instance.get_run_step_stats(result.run_id) if s.step_key == "shop_dbt_models"
    ]
    return {
        "seconds": seconds,
        "success": result.success,
        # The dbt step alone: the run also starts, and runs the marts' Dagster checks.
        "dbt_step_seconds": (step.end_time or 0.0) - (step.start_time or 0.0),
    }


def worker_main(argv: Sequence[str]) -> None:
    """``python -m bench.pipeline <kind> ...``: one timed run in this process."""
    kind, *rest = argv
    if kind == "ours":
        profile = Path(rest[1]) if len(rest) > 1 else None
        emit(_worker_ours(Path(rest[0]), profile))
    elif kind in ("floor", "pandas"):
        emit(_worker_baseline(kind, Path(rest[0]), Path(rest[1])))
    elif kind == "dbt-plain":
        emit(_worker_dbt_plain(Path(rest[0]), Path(rest[1])))
    elif kind == "dbt-dagster":
        emit(_worker_dbt_dagster(Path(rest[0])))
    else:
        raise SystemExit(f"unknown worker {kind!r}")


# --------------------------------------------------------------------------- results


@dataclass
class Measurement(RunTimes):
    """One implementation's runs in one case at one size."""

    case: str
    implementation: str
    events: int
    runs: list[WorkerRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def peak_mib(self) -> float:
        return max(r.peak_mib for r in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "implementation": self.implementation,
            "events": self.events,
            "seconds": self.seconds,
            "cpu_s": [r.cpu_s for r in self.runs],
            "peak_mib": [r.peak_mib for r in self.runs],
            "reports": [r.report for r in self.runs],
            "notes": self.notes,
        }


def _measure(
    measurement: Measurement,
    repeat: int,
    args_for_run: Callable[[int], tuple[list[str], dict[str, str] | None]],
    after_run: Callable[[int], None] | None = None,
) -> Measurement:
    for i in range(repeat):
        args, env = args_for_run(i)
        run = run_worker("bench.pipeline", args, env)
        log.info(
            "  %s %s %s run %d: %.2f s, peak %.0f MiB",
            measurement.case,
            measurement.implementation,
            f"{measurement.events:,}",
            i + 1,
            run.seconds,
            run.peak_mib,
        )
        measurement.runs.append(run)
        if after_run is not None:
            after_run(i)
    return measurement


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def prepared_manifest(data: Path) -> Iterator[None]:
    """dbt's parse state made for the runs' paths, as `make dbt-manifest` makes it for a deployment.

    dbt re-parses the whole project when the profile differs from the one it parsed with, and
    the warehouse path is in the profile: every Dagster run here uses ``data`` so that one
    parse serves them all. The project's own files are put back afterwards.
    """
    target = DBT_DIR / "target"
    saved = {
        name: (target / name).read_bytes() for name in ("manifest.json", "partial_parse.msgpack")
    }
    command, env = _dbt_command("parse", data, "--quiet")
    subprocess.run(command, env=env, check=True, cwd=DBT_DIR)
    try:
        yield
    finally:
        for name, content in saved.items():
            (target / name).write_bytes(content)


def _check_same_marts(warehouse: Path, other: Path, what: str) -> None:
    from bench.marts import compare_marts

    differences = compare_marts(warehouse, other)
    if differences:
        detail = "\n".join(f"{mart}: {text}" for mart, text in differences.items())
        raise AssertionError(f"{what} does not give our marts:\n{detail}")


def export_marts(warehouse: Path, out: Path) -> None:
    """Our marts as Parquet files (to compare one warehouse with another)."""
    import duckdb

    from bench.marts import MART_COLUMNS

    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for mart in MART_COLUMNS:
            target = str(out / f"{mart}.parquet").replace("'", "''")
            connection.execute(f"COPY main.{mart} TO '{target}' (FORMAT parquet)")


def run_end_to_end(
    work: Path,
    pristine: Path,
    events: int,
    repeat: int,
    implementations: Sequence[str],
    profile: Path | None = None,
) -> tuple[list[Measurement], Path]:
    """The three implementations on the same drops; returns them and our last data folder."""
    measurements: list[Measurement] = []
    keep = work / f"state-{events}"

    def ours_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        run_dir = _fresh(work / "run")
        link_tree(pristine, run_dir / "data" / "landing")
        args = ["ours", str(run_dir / "data")]
        if profile is not None and i == 0:
            args.append(str(profile))
        return args, None

    def keep_ours(i: int) -> None:
        if i == repeat - 1:
            shutil.rmtree(keep, ignore_errors=True)
            (work / "run").rename(keep)

    ours = Measurement("end to end", "ours", events)
    measurements.append(_measure(ours, repeat, ours_args, keep_ours))
    warehouse = keep / "data" / "warehouse.duckdb"
    for implementation in implementations:
        if implementation == "ours":
            continue
        out = work / f"out-{implementation}"

        def baseline_args(
            i: int, implementation: str = implementation, out: Path = out
        ) -> tuple[list[str], dict[str, str] | None]:
            _fresh(out)
            return [implementation, str(pristine), str(out)], None

        def check(i: int, implementation: str = implementation, out: Path = out) -> None:
            if i == 0:
                _check_same_marts(warehouse, out, implementation)

        measurement = Measurement("end to end", implementation, events)
        measurements.append(_measure(measurement, repeat, baseline_args, check))
        measurement.notes.append("same mart rows as ours")
    return measurements, keep


def run_dbt(work: Path, state: Path, events: int, repeat: int) -> list[Measurement]:
    """Plain ``dbt build`` and the Dagster dbt assets on the same raw lake, empty warehouse."""
    lake = state / "data" / "lake"
    measurements = []
    target = work / "dbt-target"
    shutil.rmtree(target, ignore_errors=True)

    def fresh_data(name: str) -> Path:
        data = _fresh(work / "run") / "data"
        shutil.copytree(lake, data / "lake", copy_function=os.link)
        return data

    def plain_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        return ["dbt-plain", str(fresh_data("dbt-plain")), str(target)], None

    def dagster_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        return ["dbt-dagster", str(fresh_data("dbt-dagster"))], None

    # One untimed build first: plain dbt then has its partial-parse file, as dagster-dbt has
    # the one `make dbt-manifest` leaves in dbt_project/target (it copies it into each run).
    run_worker("bench.pipeline", ["dbt-plain", str(fresh_data("dbt-plain")), str(target)])
    measurements.append(_measure(Measurement("dbt", "dbt build", events), repeat, plain_args))
    dagster = _measure(Measurement("dbt", "dagster-dbt", events), repeat, dagster_args)
    # The same runs, their dbt step alone (the rest is run start and the marts' own checks).
    step = Measurement("dbt", "dagster-dbt, its dbt step", events)
    step.runs = [
        WorkerRun(r.report["dbt_step_seconds"], r.cpu_s, r.peak_mib, {}) for r in dagster.runs
    ]
    measurements += [dagster, step]
    return measurements


def run_incremental(
    work: Path, pristine: Path, state: Path, events: int, repeat: int, seed: int
) -> list[Measurement]:
    """1 % new and late events after a full load, versus a full refresh of the same files.

    A third run after the same full load with nothing new measures what every run costs
    whatever it brings (run start, dbt's start, the tests and checks on whole tables): the
    floor under any incremental run.
    """
    delta = work / "delta" / DELTA_FILE
    added = write_delta_events(delta, events, seed + 1)

    def unchanged_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        run_dir = _fresh(work / "run")
        shutil.copytree(state / "data", run_dir / "data")
        return ["ours", str(run_dir / "data")], None

    def incremental_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        run_dir = _fresh(work / "run")
        shutil.copytree(state / "data", run_dir / "data")
        os.link(delta, run_dir / "data" / "landing" / "user_events" / DELTA_FILE)
        return ["ours", str(run_dir / "data")], None

    def full_args(i: int) -> tuple[list[str], dict[str, str] | None]:
        run_dir = _fresh(work / "run")
        link_tree(pristine, run_dir / "data" / "landing")
        os.link(delta, run_dir / "data" / "landing" / "user_events" / DELTA_FILE)
        return ["ours", str(run_dir / "data")], None

    unchanged = _measure(
        Measurement("incremental", "ours, run with nothing new", events), repeat, unchanged_args
    )
    before = _fresh(work / "state-marts")
    export_marts(state / "data" / "warehouse.duckdb", before)
    _check_same_marts(work / "run" / "data" / "warehouse.duckdb", before, "a run with nothing new")
    unchanged.notes.append("no new file; the marts are unchanged")
    incremental = _measure(
        Measurement("incremental", "ours, incremental run", events), repeat, incremental_args
    )
    result = work / "incremental-result"
    shutil.rmtree(result, ignore_errors=True)
    (work / "run").rename(result)
    full = _measure(Measurement("incremental", "ours, full refresh", events), repeat, full_args)
    reference = _fresh(work / "full-marts")
    export_marts(work / "run" / "data" / "warehouse.duckdb", reference)
    _check_same_marts(result / "data" / "warehouse.duckdb", reference, "the incremental run")
    note = f"{added:,} events added (half new, half 2-9 days late); same marts as the full refresh"
    incremental.notes.append(note)
    return [unchanged, incremental, full]


def run_startup(repeat: int) -> list[tuple[str, list[float]]]:
    """Wall time of fresh interpreters: bare, ``import dagster``, loading our Definitions."""
    programs = (
        ("python -c pass", "pass"),
        ("import dagster", "import dagster"),
        ("import dagster, dagster_dbt", "import dagster, dagster_dbt"),
        (
            "load and validate our Definitions",
            "import dagster as dg\n"
            "from assets_project.definitions import defs\n"
            "dg.Definitions.validate_loadable(defs)",
        ),
    )
    env = {**os.environ}
    for name in _SERVICES_ENV:
        env.pop(name, None)
    results = []
    for label, code in programs:
        seconds = []
        for _ in range(repeat + 1):  # the first run warms the page cache and .pyc files
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            seconds.append(time.perf_counter() - started)
        results.append((label, seconds[1:]))
        log.info("  start-up %s: median %.2f s", label, statistics.median(seconds[1:]))
    return results


# --------------------------------------------------------------------------- formatting


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


def format_end_to_end(measurements: Sequence[Measurement]) -> str:
    lines = [
        "| events | implementation | runs | min s | median s | events/s | CPU s | peak MiB "
        "| time vs floor | pandas vs it |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for events in sorted({m.events for m in measurements}):
        at = {m.implementation: m for m in measurements if m.events == events}
        floor = at.get("floor")
        pandas = at.get("pandas")
        for m in at.values():
            lines.append(
                f"| {events:,} | {m.implementation} | {len(m.runs)} | {m.min_s:.2f} "
                f"| {m.median_s:.2f} | {events / m.median_s:,.0f} | {m.cpu_s:.1f} "
                f"| {m.peak_mib:,.0f} | {_ratio(m.median_s, floor.median_s) if floor else '-'} "
                f"| {_ratio(pandas.median_s, m.median_s) if pandas else '-'} |"
            )
    return "\n".join(lines) + "\n"


def format_steps(measurements: Sequence[Measurement], implementation: str = "ours") -> str:
    """Where ours spends its time: the run's steps (median over the runs)."""
    ours = [m for m in measurements if m.implementation == implementation]
    if not ours:
        return ""
    keys = sorted({k for m in ours for r in m.runs for k in r.report.get("steps", {})})
    header = " | ".join(f"{m.events:,} events" for m in ours)
    lines = [f"| step | {header} |", "| --- |" + " ---: |" * len(ours)]
    for key in keys:
        cells = []
        for m in ours:
            values = [r.report["steps"][key] for r in m.runs if key in r.report.get("steps", {})]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        lines.append(f"| {key} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def format_dbt_nodes(measurements: Sequence[Measurement], top: int = 8) -> str:
    """The dbt build of each measurement's first run: models one by one, tests summed."""
    runs = [(m.implementation, m.runs[0].report.get("dbt_nodes", {})) for m in measurements]
    runs = [(name, nodes) for name, nodes in runs if nodes]
    if not runs:
        return ""

    def cells(pick: Callable[[dict[str, float]], float]) -> str:
        return " | ".join(f"{pick(nodes):.2f}" for _, nodes in runs)

    def node(key: str) -> Callable[[dict[str, float]], float]:
        return lambda nodes: nodes.get(key, 0.0)

    first = runs[0][1]
    tests = sorted((k for k in first if k.startswith("test.")), key=lambda k: -first[k])
    models = sorted((k for k in first if k not in tests), key=lambda k: -first[k])
    lines = [
        f"| dbt node (s) | {' | '.join(name for name, _ in runs)} |",
        "| --- |" + " ---: |" * len(runs),
    ]
    for key in models:
        lines.append(f"| {key.split('.')[-1]} | {cells(node(key))} |")
    total_tests = cells(lambda n: sum(v for k, v in n.items() if k.startswith("test.")))
    lines.append(f"| {len(tests)} tests, together | {total_tests} |")
    for key in tests[:top]:
        lines.append(f"| test {key.split('.')[2]} | {cells(node(key))} |")
    lines.append(f"| all nodes, together | {cells(lambda n: sum(n.values()))} |")
    return "\n".join(lines) + "\n"


def format_simple(measurements: Sequence[Measurement], base: str) -> str:
    """dbt and incremental cases: each implementation against ``base``."""
    lines = [
        f"| events | implementation | runs | min s | median s | CPU s | peak MiB | vs {base} |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        reference = next(
            x for x in measurements if x.events == m.events and x.implementation == base
        )
        lines.append(
            f"| {m.events:,} | {m.implementation} | {len(m.runs)} | {m.min_s:.2f} "
            f"| {m.median_s:.2f} | {m.cpu_s:.1f} | {m.peak_mib:,.0f} "
            f"| {_ratio(m.median_s, reference.median_s)} |"
        )
    for m in measurements:
        lines += [f"\n{m.implementation}, {m.events:,} events: {note}" for note in m.notes]
    return "\n".join(lines) + "\n"


def format_startup(results: Sequence[tuple[str, list[float]]]) -> str:
    lines = ["| fresh interpreter | runs | min s | median s |", "| --- | ---: | ---: | ---: |"]
    for label, seconds in results:
        lines.append(
            f"| {label} | {len(seconds)} | {min(seconds):.2f} | {statistics.median(seconds):.2f} |"
        )
    return "\n".join(lines) + "\n"


MARKER_START = "<!-- bench pipeline: start (written by `python -m bench pipeline --write`) -->"
MARKER_END = "<!-- bench pipeline: end -->"


def write_section(benchmarks: Path, text: str) -> None:
    """Replace the generated part of BENCHMARKS.md (between the markers) with ``text``."""
    content = benchmarks.read_text()
    start, end = content.find(MARKER_START), content.find(MARKER_END)
    if start < 0 or end < start:
        raise ValueError(f"{benchmarks} has no {MARKER_START!r} ... {MARKER_END!r} block")
    before = content[: start + len(MARKER_START)]
    benchmarks.write_text(before + "\n\n" + text.strip() + "\n\n" + content[end:])


def run(
    sizes: Sequence[int],
    cases: Sequence[str],
    repeat: int,
    seed: int,
    work: Path,
    profile: Path | None = None,
    large_repeat: int = 1,
    raw: list[dict[str, Any]] | None = None,
) -> str:
    """Run the cases at every size; return the Markdown report (tables and notes).

    Sizes from ``LARGE_SIZE`` up run ``large_repeat`` times instead of ``repeat``. Each
    measurement's runs (times, peaks, the workers' reports) are appended to ``raw``.
    """
    work.mkdir(parents=True, exist_ok=True)
    with prepared_manifest(work / "run" / "data"):
        return _run(sizes, cases, repeat, seed, work, profile, large_repeat, raw)


def _run(
    sizes: Sequence[int],
    cases: Sequence[str],
    repeat: int,
    seed: int,
    work: Path,
    profile: Path | None,
    large_repeat: int,
    raw: list[dict[str, Any]] | None,
) -> str:
    def runs(events: int) -> int:
        return repeat if events < LARGE_SIZE else large_repeat

    e2e: list[Measurement] = []
    dbt: list[Measurement] = []
    incremental: list[Measurement] = []
    states: dict[int, Path] = {}
    profiled = next((n for n in sizes if n >= 1_000_000), max(sizes))
    for events in sizes:
        pristine = generated_input(work, events, seed)
        if {"e2e", "dbt", "incremental"} & set(cases):
            implementations = E2E_IMPLEMENTATIONS if "e2e" in cases else ("ours",)
            log.info("end to end at %s events ...", f"{events:,}")
            found, states[events] = run_end_to_end(
                work,
                pristine,
                events,
                runs(events) if "e2e" in cases else 1,
                implementations,
                profile if events == profiled else None,
            )
            if "e2e" in cases:
                e2e += found
        if "dbt" in cases:
            log.info("dbt at %s events ...", f"{events:,}")
            dbt += run_dbt(work, states[events], events, runs(events))
    if "incremental" in cases:
        largest = max(sizes)
        log.info("incremental at %s events ...", f"{largest:,}")
        incremental = run_incremental(
            work,
            generated_input(work, largest, seed),
            states[largest],
            largest,
            runs(largest),
            seed,
        )
    parts = []
    if e2e:
        parts += [
            "### End to end: drops → raw Delta → staging → marts",
            format_end_to_end(e2e),
            "Where ours spends its time: the run's steps, median s (`*_contract_checks` and "
            "`asset_check_*`, the schema-drift checks, are the raw tables' checks; "
            "`shop_dbt_models` is dbt build with the dbt tests):",
            "",
            format_steps(e2e),
        ]
    if dbt:
        parts += ["### dbt through Dagster versus plain dbt build", format_simple(dbt, "dbt build")]
    if incremental:
        parts += [
            "### Incremental run versus full refresh",
            format_simple(incremental, "ours, full refresh"),
            "Where the incremental run spends its time: the run's steps (median s) and the dbt "
            "build's nodes (first run of each, dbt's own timing; 2 threads run them):",
            "",
            format_steps(incremental, "ours, incremental run"),
            format_dbt_nodes(incremental),
        ]
    if "startup" in cases:
        log.info("start-up ...")
        parts += ["### Start-up", format_startup(run_startup(max(repeat, 5)))]
    if raw is not None:
        raw += [m.as_dict() for m in (*e2e, *dbt, *incremental)]
    return "\n".join(parts)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    worker_main(sys.argv[1:])
