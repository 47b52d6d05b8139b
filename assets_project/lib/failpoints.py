"""Named crash points for the kill -9 trials: the one place where a test reaches into a load.

The write paths (Kafka consumption, PostgreSQL extraction, dead-letter replay) call
:func:`failpoint` at each boundary between their commits. In production this does nothing but
read one environment variable. A test kills the process there with SIGKILL (no cleanup, no
``finally``) by naming the point in :data:`FAILPOINT_ENV` of a child process, or runs code
there in its own process with :func:`failpoint_hook` (terminate a database session, start a
concurrent replay). The names are listed here, so a typo in a test fails instead of never
firing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

FAILPOINT_ENV = "ASSETS_PROJECT_FAILPOINT"
"""Set to a failpoint's name to kill the process with SIGKILL when it reaches that point."""

KAFKA_FAILPOINTS = (
    "kafka.after_consume",
    "kafka.after_dlq_commit",
    "kafka.after_parquet_write",
    "kafka.after_raw_commit",
    "kafka.after_kafka_commit",
)
POSTGRES_FAILPOINTS = (
    "postgres.snapshot",
    "postgres.rows_written",  # the Parquet files are written, the Delta commit is not
    "postgres.raw_committed",
    "postgres.dead_letter_committed",
)
REPLAY_FAILPOINTS = (
    "replay.checked",  # the records to move are known, nothing is committed
    "replay.raw_committed",
    "replay.dead_letter_committed",
)
FILE_FAILPOINTS = (
    "file.rows_written",  # every valid row is handed to the raw writer, nothing is committed
    "file.raw_committed",
    "file.dead_letter_committed",
)
FAILPOINTS = KAFKA_FAILPOINTS + POSTGRES_FAILPOINTS + REPLAY_FAILPOINTS + FILE_FAILPOINTS

Hook = Callable[[str], None]

# Process-wide, not per thread: delta-rs may pull a load's batches (and so reach its failpoints)
# on a thread of its own.
_hooks: list[Hook] = []
_in_hook = False


def failpoint(name: str) -> None:
    """Reach the failpoint ``name``: die if :data:`FAILPOINT_ENV` names it, run the hooks.

    While a hook runs, failpoints call no hook: a hook's own load (a concurrent replay it
    starts) runs through its failpoints untouched.
    """
    global _in_hook
    if name not in FAILPOINTS:
        raise ValueError(f"unknown failpoint {name!r}")
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if not _hooks or _in_hook:
        return
    _in_hook = True
    try:
        for hook in list(_hooks):
            hook(name)
    finally:
        _in_hook = False


@contextmanager
def failpoint_hook(hook: Hook) -> Iterator[None]:
    """Call ``hook(name)`` at every failpoint this process reaches meanwhile (tests only)."""
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)
