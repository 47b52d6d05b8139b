"""Command line: ``python -m assets_project.demo generate --size N --seed S --out DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from assets_project.demo.generate import MAX_FILES, SOURCES, generate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assets_project.demo",
        description="Deterministic demo file drops (with injected defects) for the landing zone.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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


if __name__ == "__main__":
    sys.exit(main())
