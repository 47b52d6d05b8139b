"""Robust statistics for the anomaly checks: is this batch unlike the ones before it?

Pure functions over numbers the checks read from the Dagster instance (the metadata of an
asset's earlier materializations). A value is judged against the median of its history, with
the scaled median absolute deviation (MAD) as the spread: the robust z-score
``|value - median| / spread`` must stay within ``threshold``. The spread has a floor (a share
of the median for counts, a number of percentage points for rates), so a history of identical
values does not turn the smallest change into an anomaly. Below ``min_history`` values nothing
is judged: the check passes and says it is still learning.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["WARN", "ERROR"]

MAD_TO_SIGMA = 1.4826
"""Scales the MAD to the standard deviation of normally distributed values."""
MIN_HISTORY = 5
"""Earlier batches needed before a volume or null rate is judged."""
THRESHOLD = 4.0
"""Largest robust z-score that still passes."""
MIN_RELATIVE_SPREAD = 0.1
"""Floor of the spread of a count, as a share of its median (with the threshold: a batch may
differ from the usual by up to 40 % when every earlier batch had the same size)."""
MIN_RATE_SPREAD = 0.02
"""Floor of the spread of a rate (two percentage points: up to 8 points off passes)."""
STOPPED_AFTER_INTERVALS = 3.0
"""A source has stopped when nothing arrived for this many of its usual intervals."""
DAY_OVER_DAY_MAX_CHANGE = 0.5
"""Largest relative change of a mart's row count from one day to the next that passes."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one judgement: passed or not, the severity if not, why, and the numbers."""

    passed: bool
    severity: Severity
    reason: str
    numbers: Mapping[str, float | int | None] = field(default_factory=dict)


def _spread(history: Sequence[float], center: float, floor: float) -> float:
    deviations = [abs(v - center) for v in history]
    return max(MAD_TO_SIGMA * statistics.median(deviations), floor)


def _learning(kind: str, history: Sequence[float], min_history: int, value: float) -> Verdict:
    return Verdict(
        passed=True,
        severity="WARN",
        reason=f"learning: {len(history)} of {min_history} earlier batches needed to judge "
        f"the {kind}",
        numbers={"value": value, "history_size": len(history)},
    )


def _robust(
    kind: str,
    value: float,
    history: Sequence[float],
    floor: float,
    threshold: float,
) -> Verdict:
    center = statistics.median(history)
    spread = _spread(history, center, floor)
    score = abs(value - center) / spread
    passed = score <= threshold
    direction = "above" if value > center else "below"
    return Verdict(
        passed=passed,
        severity="WARN",
        reason=f"{kind} {value:g} is within the usual range"
        if passed
        else f"{kind} {value:g} is far {direction} the median {center:g} of the last "
        f"{len(history)} batches (robust z-score {score:.1f} > {threshold:g})",
        numbers={
            "value": value,
            "median": center,
            "spread": round(spread, 6),
            "robust_z": round(score, 3),
            "lower_bound": round(center - threshold * spread, 6),
            "upper_bound": round(center + threshold * spread, 6),
            "history_size": len(history),
        },
    )


def volume_verdict(
    rows: int,
    history: Sequence[int],
    *,
    min_history: int = MIN_HISTORY,
    threshold: float = THRESHOLD,
) -> Verdict:
    """Judge a batch of ``rows`` records against the record counts of earlier batches.

    Zero rows is an ERROR whatever the history; an unusual count is a WARN.
    """
    if rows == 0:
        return Verdict(
            passed=False,
            severity="ERROR",
            reason="the batch brought zero records",
            numbers={"value": 0, "history_size": len(history)},
        )
    if len(history) < min_history:
        return _learning("volume", history, min_history, rows)
    floor = max(MIN_RELATIVE_SPREAD * statistics.median(history), 1.0)
    return _robust("volume", rows, [float(h) for h in history], floor, threshold)


def null_rate_verdict(
    nulls: int,
    rows: int,
    history: Sequence[float],
    *,
    min_history: int = MIN_HISTORY,
    threshold: float = THRESHOLD,
) -> Verdict:
    """Judge the share of a batch's ``rows`` that have no value against earlier batches' shares."""
    rate = nulls / rows if rows else 0.0
    if rows == 0:
        return Verdict(True, "WARN", "no records in the batch: no null rate", {"value": 0.0})
    if len(history) < min_history:
        return _learning("null rate", history, min_history, round(rate, 6))
    verdict = _robust("null rate", round(rate, 6), history, MIN_RATE_SPREAD, threshold)
    return Verdict(
        verdict.passed, verdict.severity, verdict.reason, {**verdict.numbers, "nulls": nulls}
    )


def stopped_verdict(
    arrivals: Sequence[float],
    now: float,
    *,
    min_history: int = MIN_HISTORY,
    factor: float = STOPPED_AFTER_INTERVALS,
) -> Verdict:
    """Has a source stopped? ``arrivals`` are the epoch seconds of its batches (any order).

    ERROR when the time since the last batch exceeds ``factor`` times the median interval
    between batches; needs ``min_history`` intervals before it judges.
    """
    times = sorted(arrivals)
    intervals = [b - a for a, b in itertools.pairwise(times)]
    if not times:
        return Verdict(True, "ERROR", "never materialized: nothing to judge", {"history_size": 0})
    silence = max(0.0, now - times[-1])
    if len(intervals) < min_history:
        return Verdict(
            True,
            "ERROR",
            f"learning: {len(intervals)} of {min_history} intervals between batches needed",
            {"silence_s": round(silence, 3), "history_size": len(intervals)},
        )
    usual = statistics.median(intervals)
    limit = factor * usual
    passed = silence <= limit
    return Verdict(
        passed=passed,
        severity="ERROR",
        reason=f"last batch {silence:.0f} s ago, within {factor:g} x the usual interval"
        if passed
        else f"no batch for {silence:.0f} s, more than {factor:g} x the usual interval of "
        f"{usual:.0f} s: the source has stopped",
        numbers={
            "silence_s": round(silence, 3),
            "usual_interval_s": round(usual, 3),
            "limit_s": round(limit, 3),
            "history_size": len(intervals),
        },
    )


def day_over_day_verdict(
    rows: int, previous: int | None, *, max_change: float = DAY_OVER_DAY_MAX_CHANGE
) -> Verdict:
    """Judge a mart's row count against its count on an earlier day (``None``: none known)."""
    if previous is None:
        return Verdict(True, "WARN", "no materialization on an earlier day to compare with")
    change = (rows - previous) / previous if previous else (math.inf if rows else 0.0)
    passed = abs(change) <= max_change
    shown = "from none" if math.isinf(change) else f"{change:+.1%}"
    return Verdict(
        passed=passed,
        severity="WARN",
        reason=f"row count changed {shown} since the earlier day"
        + ("" if passed else f", more than {max_change:.0%}"),
        numbers={
            "rows": rows,
            "previous_rows": previous,
            "change": None if math.isinf(change) else round(change, 6),
        },
    )
