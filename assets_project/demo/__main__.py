"""Command line of the demo data: ``python -m assets_project.demo <command> ...``.

generate --size N --seed S --out DIR      demo file drops for the landing folders
produce --topic user-events --events N [--rate R] [--poison K] [--partitions P]
                                          demo user events to Kafka (KAFKA_BOOTSTRAP_SERVERS)
db-init / db-traffic                      the orders table in PostgreSQL (DATABASE_URL), and
                                          inserts, updates and late-committing transactions
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from assets_project.demo.generate import cli as generate_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assets_project.demo",
        description="Deterministic demo file drops (with injected defects) for the landing zone.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate_cli.add_parser(commands)

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
    prod = commands.add_parser(
        "produce", help="publish generated user events (and poison messages) to a Kafka topic"
    )
    prod.add_argument("--topic", default="user-events", help="topic (default user-events)")
    prod.add_argument("--events", type=int, required=True, help="number of user events")
    prod.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    prod.add_argument(
        "--rate", type=float, help="messages per second (default: one burst, as fast as possible)"
    )
    prod.add_argument(
        "--poison", type=int, default=0, help="extra messages that are not JSON (default 0)"
    )
    prod.add_argument(
        "--partitions", type=int, default=4, help="partitions if the topic is created (default 4)"
    )
    prod.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="default: $KAFKA_BOOTSTRAP_SERVERS",
    )
    prod.add_argument("-v", "--verbose", action="store_true", help="log progress")
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


def _produce(args: argparse.Namespace) -> int:
    from assets_project.demo.produce import ensure_topic, event_lines, produce, with_poison
    from assets_project.lib.kafka import KafkaSettings

    if not args.bootstrap_servers:
        sys.stderr.write("error: set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers\n")
        return 2
    if args.events < 1 or args.poison < 0 or args.partitions < 1:
        sys.stderr.write("error: --events and --partitions must be >= 1, --poison >= 0\n")
        return 2
    settings = KafkaSettings(
        bootstrap_servers=args.bootstrap_servers,
        security_protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL"),
        sasl_mechanism=os.environ.get("KAFKA_SASL_MECHANISM"),
        sasl_username=os.environ.get("KAFKA_SASL_USERNAME"),
        sasl_password=os.environ.get("KAFKA_SASL_PASSWORD"),
    )
    partitions = ensure_topic(settings, args.topic, args.partitions)
    messages = with_poison(event_lines(args.events, args.seed), args.poison, args.seed)
    report = produce(settings, args.topic, messages, rate=args.rate, poison=args.poison)
    sys.stdout.write(
        f"published {report.messages} messages ({report.events} event lines, "
        f"{report.poison} poison) to {args.topic} ({partitions} partitions) "
        f"in {report.seconds:.1f} s\n"
    )
    return 0


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
    if args.command == "produce":
        return _produce(args)
    return generate_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
