"""Event-time freshness: how old is the newest record *in the data*?

The freshness policy of a raw asset watches its last materialization; a run that ingests stale
files refreshes that too. This judges the data itself: the age of its newest event or update
against the contract's warn and fail windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from assets_project.lib.anomaly import Verdict


def event_time_verdict(
    newest: datetime | None, now: datetime, warn_after: timedelta, fail_after: timedelta
) -> Verdict:
    """Judge the age of the newest record (``None``: there is none) at ``now``.

    Older than ``fail_after``: ERROR; older than ``warn_after``: WARN; else it passes. A table
    without records fails with ERROR: nothing fresh has arrived.
    """
    windows = {
        "warn_after_minutes": warn_after.total_seconds() / 60,
        "fail_after_minutes": fail_after.total_seconds() / 60,
    }
    if newest is None:
        return Verdict(False, "ERROR", "the raw table holds no records", windows)
    age = now - newest
    numbers = {**windows, "age_minutes": round(age.total_seconds() / 60, 2)}
    shown = f"newest record is {_duration(age)} old ({newest.isoformat()})"
    if age > fail_after:
        return Verdict(
            False, "ERROR", f"{shown}: past the fail window of {_duration(fail_after)}", numbers
        )
    if age > warn_after:
        return Verdict(
            False, "WARN", f"{shown}: past the warn window of {_duration(warn_after)}", numbers
        )
    return Verdict(True, "WARN", f"{shown}: within {_duration(warn_after)}", numbers)


def _duration(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if abs(minutes) < 120:
        return f"{minutes:.0f} min"
    if abs(minutes) < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"
