"""Run the benchmarks: ``python -m bench`` (the default set) or one case with its options.

    python -m bench                                   # the pipeline set at 1e5 and 1e6 events
    python -m bench pipeline --large --write          # ... and 1e7; results into BENCHMARKS.md
    python -m bench pipeline --size 1e6 --cases e2e dbt --repeat 2
    python -m bench validation                        # validation at 1e6 and 1e7 rows
    python -m bench validation --rows 1000000 --repeat 3
    python -m bench validation --rows 1000000 --impl ours pandas --breakdown
    python -m bench postgres --rows 1e5 --rows 1e6 --repeat 3  # DATABASE_URL or local cluster
    python -m bench kafka --events 1000000 --repeat 3   # Kafka → Delta vs a bare consume loop
    python -m bench lake --drops 100 --events 50000 --dbt  # scans before/after maintenance
    python -m bench latency --drops 5                 # drop-to-mart latency under make dev

Progress goes to stderr; the results (machine, versions, a Markdown table per case) to stdout,
in the form ``BENCHMARKS.md`` uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from bench import kafka, lake, latency, pipeline, postgres, validation

log = logging.getLogger("bench")

PACKAGES = (
    "dagster",
    "dagster-dbt",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "pyarrow",
    "pandas",
    "numpy",
    "pandera",
    "confluent-kafka",
    "deltalake",
)
#: The default set: (rows, implementations, runs where not --repeat). pandas with object
#: strings holds 5 GB at 1e7 rows and adds 80 s, so it runs at 1e6 only.
DEFAULT_VALIDATION: tuple[tuple[int, tuple[str, ...], dict[str, int]], ...] = (
    (1_000_000, validation.IMPLEMENTATIONS, {}),
    (
        10_000_000,
        tuple(name for name in validation.IMPLEMENTATIONS if name != "pandas-object"),
        {"pandas": 1, "pandera": 1},
    ),
)


def machine() -> dict[str, str]:
    """CPU, cores, memory, Python and package versions of this machine."""
    cpu = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0))),
        "memory": memory,
        "python": platform.python_version(),
    }
    for name in PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    return info


def format_machine(info: dict[str, str]) -> str:
    packages = ", ".join(f"{name} {info[name]}" for name in PACKAGES)
    return (
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM\n"
        f"- Python {info['python']}; {packages}\n"
    )


def format_case(case: validation.CaseResult) -> str:
    """One Markdown table for one size, with the ratios against ``ours``."""
    ours = next((m for m in case.measurements if m.implementation == "ours"), None)
    lines = [
        f"{case.rows:,} rows: {case.arrow_mib:.0f} MiB of Arrow text "
        f"({case.csv_bytes_per_row:.0f} bytes per CSV row), "
        f"{case.expected_rejected:,} rows with defects; all implementations rejected exactly "
        "those rows with the same reasons.",
        "",
        "| case | rows | runs | min s | median s | rows/s | CPU s | peak MiB "
        "| peak / Arrow | input MiB | time vs ours |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in case.measurements:
        name = m.implementation
        if m.batch_rows and m.batch_rows < m.rows:
            name += f" ({m.batch_rows:,}-row batches)"
        ratio = f"{m.median_s / ours.median_s:.1f}x" if ours else "-"
        lines.append(
            f"| {name} | {m.rows:,} | {len(m.seconds)} | {m.min_s:.2f} | {m.median_s:.2f} "
            f"| {m.rows / m.median_s:,.0f} | {m.median_cpu_s:.1f} | {m.peak_mib:,.0f} "
            f"| {m.peak_mib / m.arrow_mib:.2f} | {m.input_mib:,.0f} | {ratio} |"
        )
    if any(m.implementation == "ours-stream" for m in case.measurements):
        lines.append("")
        lines.append(
            "peak / Arrow: peak RSS growth over the Arrow size of the input text; for "
            "ours-stream, over one batch's (the batch in flight)."
        )
    setup = [m for m in case.measurements if m.setup_seconds]
    if setup:
        lines.append("")
        lines.append(
            "Not timed: building the DataFrame from the Arrow table took "
            + ", ".join(f"{m.setup_seconds:.2f} s ({m.implementation})" for m in setup)
            + "."
        )
    for m in case.measurements:
        for note in m.notes:
            lines.append(f"Note ({m.implementation}): {note}")
    return "\n".join(lines) + "\n"


def format_breakdown(rows: int, batch_rows: int | None, timings: dict[str, float]) -> str:
    size = f"one batch of {batch_rows:,} rows" if batch_rows else f"one batch of {rows:,} rows"
    lines = [f"Where ours spends its time ({size}, best of 3 runs after a warm-up):", ""]
    lines += ["| phase or variant | s |", "| --- | ---: |"]
    lines += [f"| {label} | {seconds:.3f} |" for label, seconds in timings.items()]
    return "\n".join(lines) + "\n"


def format_batch_memory(rows: list[dict[str, float]]) -> str:
    lines = [
        f"One reader batch ({int(rows[0]['rows']):,} rows, {rows[0]['arrow_mib']:.0f} MiB of "
        "Arrow text) in a fresh process, connection warmed up; peak of the first run:",
        "",
        "| run_validation variant | best s | peak MiB | peak / batch Arrow |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['label']} | {r['seconds']:.3f} | {r['peak_mib']:.0f} "
        f"| {r['peak_mib'] / r['arrow_mib']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def _emit(out: list[str], text: str) -> None:
    out.append(text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_validation_case(args: argparse.Namespace, out: list[str], raw: list[dict]) -> None:
    sizes: list[tuple[int, tuple[str, ...], dict[str, int]]]
    if args.rows:
        sizes = [(rows, tuple(args.impl), {}) for rows in args.rows]
    else:
        sizes = [(rows, impls, dict(runs)) for rows, impls, runs in DEFAULT_VALIDATION]
    for rows, impls, runs in sizes:
        if args.slow_repeat is not None:
            runs = {"pandas": args.slow_repeat, "pandera": args.slow_repeat}
        case = validation.run_case(
            rows, args.repeat, impls, seed=args.seed, repeat_for=runs, log=log.info
        )
        _emit(out, format_case(case))
        raw.append(asdict(case))
    if args.breakdown:
        log.info("breakdown of ours ...")
        rows = min(r for r, _, _ in sizes)
        table, _ = validation.orders_batch(rows, args.seed)
        batch_rows = validation.reader_batch_rows(table)
        del table
        for batch in (batch_rows, None):
            timings = validation.breakdown_ours(rows, args.seed, batch)
            _emit(out, format_breakdown(rows, batch, timings))
        memory = validation.batch_memory_table(batch_rows, args.seed)
        _emit(out, format_batch_memory(memory))
        raw.append({"breakdown_batch_memory": memory})
    if args.profile:
        rows = min(r for r, _, _ in sizes)
        _emit(out, validation.profile_ours(rows, args.seed))


def run_postgres_case(args: argparse.Namespace, out: list[str], raw: list[dict]) -> None:
    with postgres.admin_url() as admin:
        for rows in args.rows or (100_000, 1_000_000):
            measurements = postgres.run_case(
                admin, rows, args.repeat, tuple(args.pg_impl), log=log.info
            )
            _emit(out, postgres.format_case(measurements))
            raw.extend(asdict(m) for m in measurements)


def _settings(text: str) -> tuple[str, dict[str, str]]:
    label, _, pairs = text.partition(":")
    values = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    return label, values


def run_latency_case(args: argparse.Namespace, out: list[str], raw: list[dict]) -> None:
    variants = [("shipped defaults", {}), *(_settings(text) for text in args.setting)]
    cases = []
    for index, (label, settings) in enumerate(variants):
        log.info("latency: %s %s", label, settings)
        case = latency.run_case(
            args.drops or 5,
            args.drop_events,
            args.work.resolve() / f"latency-{index}",
            log.info,
            label=label,
            settings=settings,
        )
        cases.append(case)
        raw.append(asdict(case))
    _emit(out, latency.format_case(cases))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "case",
        nargs="?",
        default="pipeline",
        choices=["pipeline", "validation", "postgres", "kafka", "lake", "latency"],
    )
    parser.add_argument(
        "--size",
        type=lambda text: int(float(text)),
        action="append",
        help="pipeline: user events of the demo data (repeatable); default 1e5 and 1e6",
    )
    parser.add_argument("--large", action="store_true", help="pipeline: add 1e7 events")
    parser.add_argument(
        "--large-repeat", type=int, default=1, help="pipeline: runs per case at 1e7 (default 1)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["e2e", "dbt", "incremental", "startup"],
        choices=["e2e", "dbt", "incremental", "startup"],
        help="pipeline: the cases to run (incremental runs at the largest size)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/lakehouse-bench"),
        help="pipeline: scratch folder for inputs and runs (inputs are reused)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="pipeline: replace the generated block of BENCHMARKS.md with the results",
    )
    parser.add_argument(
        "--profile-to",
        type=Path,
        help="pipeline: pyinstrument profile of ours' first run at the largest size, to this file",
    )
    parser.add_argument(
        "--events",
        type=lambda text: int(float(text)),
        default=1_000_000,
        help="kafka: events to publish (default 1e6)",
    )
    parser.add_argument(
        "--rows",
        type=lambda text: int(float(text)),
        action="append",
        help="rows of input (repeatable; 1e6 works); default: the default set",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation")
    parser.add_argument(
        "--slow-repeat", type=int, help="runs of pandas and pandera (default: --repeat, 1 at 1e7)"
    )
    parser.add_argument(
        "--impl",
        nargs="+",
        default=list(validation.IMPLEMENTATIONS),
        choices=validation.IMPLEMENTATIONS,
        help="implementations to run (ours first: the others are checked against it)",
    )
    parser.add_argument(
        "--pg-impl",
        nargs="+",
        default=list(postgres.IMPLEMENTATIONS),
        choices=postgres.IMPLEMENTATIONS,
        help="postgres: implementations to run (e.g. without pandas at 1e7)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--drops", type=int, help="lake: drops to ingest (<= 100, default 100); latency: 5"
    )
    parser.add_argument(
        "--drop-events", type=int, default=1000, help="latency: user events per drop (1000)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="LABEL:VAR=VALUE[,VAR=VALUE]",
        help="latency: also run under these environment settings (repeatable)",
    )
    parser.add_argument("--dbt", action="store_true", help="lake: also time dbt build")
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time the phases of ours (default: on for the default set)",
    )
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of ours")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)
    if args.breakdown is None:
        args.breakdown = not args.rows
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    info = machine()
    out = [format_machine(info)]
    sys.stdout.write(out[0] + "\n")
    raw: list[dict] = []
    if args.case == "pipeline":
        sizes = sorted(set(args.size or pipeline.DEFAULT_SIZES))
        if args.large:
            sizes = sorted({*sizes, pipeline.LARGE_SIZE})
        report = pipeline.run(
            sizes,
            args.cases,
            args.repeat,
            args.seed,
            args.work.resolve(),
            args.profile_to,
            args.large_repeat,
            raw,
        )
        _emit(out, report)
        if args.write:
            pipeline.write_section(
                Path(__file__).resolve().parents[1] / "BENCHMARKS.md", "\n".join(out)
            )
    elif args.case == "kafka":
        case = kafka.run_case(args.events, args.repeat, seed=args.seed, log=log.info)
        _emit(out, kafka.format_case(case))
        raw.append(asdict(case))
    elif args.case == "postgres":
        run_postgres_case(args, out, raw)
    elif args.case == "lake":
        lake_case = lake.run_case(
            args.drops or 100,
            args.events,
            args.repeat,
            seed=args.seed,
            with_dbt=args.dbt,
            log=log.info,
        )
        _emit(out, lake.format_case(lake_case))
        raw.append(asdict(lake_case))
    elif args.case == "latency":
        run_latency_case(args, out, raw)
    else:
        run_validation_case(args, out, raw)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "cases": raw}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
