"""The robust statistics of the anomaly checks and the event-time freshness verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from assets_project.lib.anomaly import (
    day_over_day_verdict,
    null_rate_verdict,
    stopped_verdict,
    volume_verdict,
)
from assets_project.lib.freshness import event_time_verdict

USUAL = [980, 1010, 1000, 995, 1020, 1005]


def test_volume_within_the_usual_range_passes() -> None:
    verdict = volume_verdict(1030, USUAL)
    assert verdict.passed
    assert verdict.numbers["median"] == 1002.5


def test_shrunken_volume_warns_and_zero_rows_is_an_error() -> None:
    shrunk = volume_verdict(60, USUAL)
    assert not shrunk.passed and shrunk.severity == "WARN"
    assert "below the median" in shrunk.reason
    empty = volume_verdict(0, USUAL)
    assert not empty.passed and empty.severity == "ERROR"
    assert not volume_verdict(0, []).passed  # zero rows needs no history


def test_volume_is_not_judged_before_enough_history() -> None:
    verdict = volume_verdict(5, USUAL[:4])
    assert verdict.passed and verdict.reason.startswith("learning: 4 of 5")


def test_one_outlier_in_the_history_does_not_move_the_judgement() -> None:
    assert volume_verdict(1000, [*USUAL, 100_000]).passed  # the median ignores it


def test_identical_history_still_allows_small_changes() -> None:
    assert volume_verdict(1100, [1000] * 6).passed  # the spread floor: 10 % of the median
    assert not volume_verdict(1500, [1000] * 6).passed


def test_null_rate_spike_warns() -> None:
    history = [0.0, 0.01, 0.005, 0.0, 0.002]
    assert null_rate_verdict(1, 100, history).passed
    spiked = null_rate_verdict(40, 100, history)
    assert not spiked.passed and spiked.severity == "WARN"
    assert spiked.numbers["nulls"] == 40


def test_a_source_that_stops_is_an_error() -> None:
    hourly = [3600.0 * i for i in range(8)]
    assert stopped_verdict(hourly, hourly[-1] + 2 * 3600).passed
    stopped = stopped_verdict(hourly, hourly[-1] + 4 * 3600)
    assert not stopped.passed and stopped.severity == "ERROR"
    assert stopped.numbers["usual_interval_s"] == 3600
    assert stopped_verdict(hourly[:3], hourly[2] + 10**6).passed  # still learning


def test_day_over_day() -> None:
    assert day_over_day_verdict(100, None).passed
    assert day_over_day_verdict(120, 100).passed
    halved = day_over_day_verdict(40, 100)
    assert not halved.passed and halved.severity == "WARN"
    assert not day_over_day_verdict(5, 0).passed


def test_event_time_verdict_windows() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    warn, fail = timedelta(minutes=30), timedelta(minutes=120)
    assert event_time_verdict(now - timedelta(minutes=10), now, warn, fail).passed
    late = event_time_verdict(now - timedelta(minutes=60), now, warn, fail)
    assert (late.passed, late.severity) == (False, "WARN")
    stale = event_time_verdict(now - timedelta(hours=3), now, warn, fail)
    assert (stale.passed, stale.severity) == (False, "ERROR")
    assert stale.numbers["age_minutes"] == 180
    empty = event_time_verdict(None, now, warn, fail)
    assert (empty.passed, empty.severity) == (False, "ERROR")
