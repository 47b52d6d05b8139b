"""Command line of the demo data.

``python -m assets_project.demo generate --size N --seed S --out DIR`` writes file drops;
``db-init`` and ``db-traffic`` create and change the orders table in the PostgreSQL database
named by ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
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

    init = commands.add_parser(
        "db-init", help="create the orders table in DATABASE_URL and load initial orders"
    )
    init.add_argument("--size", type=int, default=5000, help="demo size (orders = size / 10)")
    init.add_argument("--seed", type=int, default=42, help="random seed (>= 0)")
    init.add_argument(
        "--defects", type=float, default=0.002, help="share of orders breaking the contract"
    )
    init.add_argument("--replace", action="store_true", help="empty the table first")

    traffic = commands.add_parser(
        "db-traffic", help="insert and update orders, with late-committing transactions"
    )
    traffic.add_argument("--inserts", type=int, default=20, help="new orders per round")
    traffic.add_argument("--updates", type=int, default=30, help="updated orders per round")
    traffic.add_argument(
        "--late", type=int, default=2, help="orders per round from a transaction that commits last"
    )
    traffic.add_argument("--defects", type=float, default=0.01, help="share of invalid new orders")
    traffic.add_argument("--rounds", type=int, default=1, help="rounds of traffic (default 1)")
    traffic.add_argument("--every", type=float, default=5.0, help="seconds between rounds")
    traffic.add_argument("--size", type=int, default=5000, help="demo size the ids refer to")
    traffic.add_argument("--seed", type=int, default=0, help="random seed of the first round")
    return parser


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise ValueError("DATABASE_URL is not set (e.g. postgresql://user@127.0.0.1:5432/shop)")
    return url


def _db_command(args: argparse.Namespace) -> str:
    from assets_project.demo.shop_db import init_orders, simulate_traffic

    if args.command == "db-init":
        loaded = init_orders(
            _database_url(),
            size=args.size,
            seed=args.seed,
            defects=args.defects,
            replace=args.replace,
        )
        return f"loaded {loaded} orders"
    lines = []
    for round_ in range(args.rounds):
        if round_:
            time.sleep(args.every)
        done = simulate_traffic(
            _database_url(),
            inserts=args.inserts,
            updates=args.updates,
            late=args.late,
            seed=args.seed + round_,
            size=args.size,
            defects=args.defects,
        )
        lines.append(
            f"round {round_ + 1}: {len(done.inserted)} inserted, {len(done.updated)} updated, "
            f"{len(done.late)} committed late"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("db-init", "db-traffic"):
        try:
            sys.stdout.write(_db_command(args) + "\n")
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        return 0
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
