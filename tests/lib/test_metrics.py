"""Batch metrics from a raw materialization's metadata."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from assets_project.lib.metrics import NEWEST_EVENT_TIME, batch_metrics, epoch_seconds

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        NOON,
        NOON.timestamp(),
        "2026-03-01T12:00:00+00:00",
        dg.MetadataValue.timestamp(NOON),
        dg.MetadataValue.float(NOON.timestamp()),
    ],
)
def test_every_form_of_a_timestamp_entry_is_read(value: object) -> None:
    assert epoch_seconds(value) == NOON.timestamp()


def test_reject_rate_and_event_time_lag() -> None:
    metadata = {
        "rows_in": dg.MetadataValue.int(40),
        "rows_rejected": 10,
        NEWEST_EVENT_TIME: dg.MetadataValue.timestamp(NOON),
    }
    assert batch_metrics(metadata, now=NOON.timestamp() + 90) == {
        "reject_rate": 0.25,
        "event_time_lag_s": 90.0,
    }
    assert batch_metrics({"rows_in": 0, "rows_rejected": 0}, now=0) == {"reject_rate": 0.0}
    assert batch_metrics({"rows_in": True, NEWEST_EVENT_TIME: "not a time"}, now=0) == {}
