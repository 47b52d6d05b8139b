"""Dead-letter command line: ``python -m assets_project.dlq replay <source> [<source> ...]``.

Re-validates a source's dead-letter rows against its current contract (after the contract or
the data was fixed) and moves the rows that now pass into the raw table, exactly once.
"""

from __future__ import annotations

import argparse
import logging
import sys

from assets_project.lib.contracts import load_contract, source_names
from assets_project.lib.lake import LakeLayout
from assets_project.lib.replay import replay_dead_letters

log = logging.getLogger("assets_project.dlq")


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m assets_project.dlq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="move dead letters that now pass into raw")
    replay.add_argument("sources", nargs="+", choices=source_names(), metavar="SOURCE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    layout = LakeLayout.from_env()
    for source in args.sources:
        result = replay_dead_letters(layout, load_contract(source))
        log.info(
            "%s: %d dead letters examined, %d pass now, %d moved to raw, %d still rejected",
            source,
            result.examined,
            result.now_valid,
            result.moved,
            result.still_rejected,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
