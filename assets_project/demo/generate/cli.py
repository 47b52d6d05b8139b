"""The ``generate`` command of ``python -m assets_project.demo``: its arguments and its run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from assets_project.demo.generate.run import generate
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
    return gen


def run(args: argparse.Namespace) -> int:
    """Generate the demo drops ``args`` ask for and print a summary; returns the exit code."""
    try:
        report = generate(args.out, args.size, args.seed, args.files, overwrite=args.overwrite)
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
