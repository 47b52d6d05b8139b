"""The project's command line: ``python -m assets_project <command> ...``.

Each command lives in its own module (``assets_project/cli/<command>.py`` or a named module)
with a ``main(argv) -> int``; it is imported only when it runs, so ``--help`` stays fast and a
command never loads what another one needs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command -> (module with ``main(argv) -> int``, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dlq": ("assets_project.dlq", "replay dead letters that pass their contract now"),
    "demo": ("assets_project.demo.__main__", "demo data: files, Kafka events, the shop database"),
    "contracts": ("assets_project.cli.contracts", "ODCS contracts: lint, show, export, generate"),
    "lake": ("assets_project.cli.lake", "lake tables: show, history, as-of, restore"),
    "metrics": ("assets_project.cli.metrics", "serve the pipeline's metrics for Prometheus"),
}


def usage() -> str:
    """The list of commands, one per line."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in sorted(COMMANDS.items())]
    return "usage: python -m assets_project <command> [...]\n\ncommands:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the command's module; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(usage() + "\n")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        sys.stderr.write(f"unknown command {name!r}\n{usage()}\n")
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
