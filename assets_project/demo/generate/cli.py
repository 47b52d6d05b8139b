"""The ``generate`` command of ``python -m assets_project.demo``: its arguments and its run."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assets_project.demo.generate.run import generate
from assets_project.demo.generate.variants import Variants
from assets_project.demo.generate.vocabulary import MAX_FILES, SOURCES


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to ``commands`` (an ``add_subparsers`` result)."""
    gen = commands.add_parser("generate", help="write users, products, orders and user events")
    gen.add_argument("--size", type=int, required=True, help="number of user events")
    gen.add_argument("--seed", type=int, required=True, help="random seed (>= 0)")
    gen.add_argument("--out", type=Path, required=True, help="landing folder to write into")
    gen.add_argument(
        "--files", type=int, default=2, help=f"files per source, 1..{MAX_FILES} (default 2)"
    )
    gen.add_argument(
        "--overwrite",
        action="store_true",
        help="delete files of an earlier run in --out first instead of refusing",
    )
    gen.add_argument("-v", "--verbose", action="store_true", help="log progress")
    bad = gen.add_argument_group("bad batches, for the monitoring checks (default: none)")
    bad.add_argument(
        "--ends-at",
        type=_aware,
        help="shift every time so the data ends at this ISO time (default zone UTC) instead "
        "of 2026-02-01; 'now' for fresh data",
    )
    bad.add_argument(
        "--late-minutes",
        type=int,
        help="a late batch: the data ends this many minutes before --ends-at (default: now)",
    )
    bad.add_argument(
        "--shrink", type=float, help="a shrunken batch: the last file keeps this share of rows"
    )
    bad.add_argument(
        "--null-spike",
        type=float,
        help="a null-spiked batch: this share of the last file's rows loses a value",
    )
    return gen


def _aware(text: str) -> datetime:
    """An ISO time (UTC unless it names a zone), or ``now``."""
    if text == "now":
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def variants_of(args: argparse.Namespace) -> Variants:
    """The bad batches the arguments ask for."""
    ends_at = args.ends_at
    if args.late_minutes is not None:
        ends_at = (ends_at or datetime.now(UTC)) - timedelta(minutes=args.late_minutes)
    return Variants(ends_at=ends_at, shrink=args.shrink, null_spike=args.null_spike)


def run(args: argparse.Namespace) -> int:
    """Generate the demo drops ``args`` ask for and print a summary; returns the exit code."""
    try:
        report = generate(
            args.out,
            args.size,
            args.seed,
            args.files,
            overwrite=args.overwrite,
            variants=variants_of(args),
        )
    except (ValueError, FileExistsError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    lines = [f"wrote demo data to {report.out} in {report.seconds:.1f} s"]
    for source in SOURCES:
        stats = report.manifest["sources"][source]
        lines.append(
            f"  {source:<12} {len(stats['files'])} files, {stats['rows']:>10} rows "
            f"({stats['clean_rows']} clean, {stats['rows'] - stats['clean_rows']} defect rows)"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
