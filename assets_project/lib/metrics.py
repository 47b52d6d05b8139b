"""Batch metrics derived from a raw materialization's metadata: reject rate and event-time lag.

The raw assets add them to their materialization metadata (so the UI plots them per batch) and
the Prometheus endpoint (:mod:`assets_project.cli.metrics`) reads them back from the instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dagster as dg

from assets_project.lib.quality import BatchCounts

NEWEST_EVENT_TIME = "newest_event_time"
"""Raw materializations: when the newest record in the raw table happened (its update time,
else its partition column), a ``dg.TimestampMetadataValue``; the event-time lag is its age."""


def plain(value: Any) -> Any:
    """The Python value of a metadata entry (a ``dg.MetadataValue`` or a plain value)."""
    return value.value if isinstance(value, dg.MetadataValue) else value


def number(metadata: Mapping[str, Any], key: str) -> float | None:
    """The number under ``key``, or ``None`` when there is none (booleans are not numbers)."""
    value = plain(metadata.get(key))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def epoch_seconds(value: Any) -> float | None:
    """A timestamp entry (epoch seconds, ``datetime`` or ISO 8601 text) as epoch seconds."""
    value = plain(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def reject_rate(metadata: Mapping[str, Any]) -> float | None:
    """Rejected rows over rows in (0 for an empty batch); ``None`` without the counts."""
    rows_in, rejected = number(metadata, "rows_in"), number(metadata, "rows_rejected")
    if rows_in is None or rejected is None:
        return None
    return BatchCounts(raw=int(rows_in - rejected), dead_letter=int(rejected)).reject_rate


def event_time_lag_seconds(metadata: Mapping[str, Any], now: float) -> float | None:
    """Seconds from the batch's newest event time to ``now``; ``None`` when it is unknown."""
    newest = epoch_seconds(metadata.get(NEWEST_EVENT_TIME))
    return None if newest is None else max(0.0, now - newest)


def batch_metrics(metadata: Mapping[str, Any], now: float) -> dict[str, float]:
    """``reject_rate`` and ``event_time_lag_s`` for a raw batch's metadata (those it allows)."""
    metrics: dict[str, float] = {}
    rate = reject_rate(metadata)
    if rate is not None:
        metrics["reject_rate"] = round(rate, 6)
    lag = event_time_lag_seconds(metadata, now)
    if lag is not None:
        metrics["event_time_lag_s"] = round(lag, 3)
    return metrics
