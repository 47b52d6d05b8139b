"""What `make dev` prints once the UI answers: its URL and three things to try.

``python -m assets_project.demo.welcome --url http://127.0.0.1:3000 --pid <dagster dev pid>``
waits until ``<url>/server_info`` answers (or the process exits), then writes the message.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

from assets_project.lib.processes import process_exists

_POLL_SECONDS = 1.0
_DEADLINE_SECONDS = 600.0


def message(url: str, data_dir: str) -> str:
    """The text shown once the UI is up."""
    return f"""
  Dagster UI: {url}

  Three things to try:
    1. Drop a file and watch its sensor pick it up (runs within ~30 s):
         .venv/bin/python -m assets_project.demo generate --size 200 --seed 7 --out /tmp/drop
         cp /tmp/drop/users/users_0001.csv {data_dir}/landing/users/users_more.csv
       then open {url}/automation (users_file_sensor) and {url}/runs
    2. Open the lineage of a mart, from the raw tables to its columns:
         {url}/assets/fct_daily_revenue?view=lineage
    3. Replay the dead letters after fixing a contract (moves rows that now pass, exactly once):
         .venv/bin/python -m assets_project.dlq replay users products
       rejected records and their reasons: {data_dir}/lake/dlq/<source> (Delta)

  Ctrl-C stops the webserver and the daemon.
"""


def _alive(pid: int | None) -> bool:
    return pid is None or process_exists(pid)


def wait_until_up(url: str, pid: int | None, deadline_seconds: float = _DEADLINE_SECONDS) -> bool:
    """True once ``url``/server_info answers 200; False if ``pid`` exits or time runs out."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and _alive(pid):
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(_POLL_SECONDS)
    return False


def main(argv: list[str] | None = None) -> int:
    """Wait for the UI, then print the welcome; exit 1 if it never came up."""
    parser = argparse.ArgumentParser(prog="python -m assets_project.demo.welcome")
    parser.add_argument("--url", required=True, help="the UI's base URL")
    parser.add_argument("--pid", type=int, help="the dagster dev process to watch")
    parser.add_argument("--data-dir", default="data", help="the data folder, for the examples")
    args = parser.parse_args(argv)
    if not wait_until_up(args.url.rstrip("/"), args.pid):
        sys.stderr.write(f"the Dagster UI did not answer at {args.url}\n")
        return 1
    sys.stdout.write(message(args.url.rstrip("/"), args.data_dir))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
