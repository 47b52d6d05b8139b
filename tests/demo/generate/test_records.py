"""Tests of the demo data generator. Valid records: formats of timestamps, dates, money and event lines."""

from __future__ import annotations

import re
from datetime import datetime

from tests.demo.generate.strict import CSV_TS, Source


def test_clean_rows_follow_the_contract(sources: dict[str, Source]) -> None:
    """Spot checks on top of the validator: formats of timestamps, dates and money."""
    for row in sources["users"].valid():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row.record["signup_date"])
    for name in ("products", "orders"):
        for row in sources[name].valid():
            assert re.fullmatch(r"\d+\.\d\d", row.record["unit_price"])
            assert datetime.strptime(row.record["updated_at"], CSV_TS) < datetime(2026, 2, 1)
    for row in sources["user_events"].valid():
        assert list(row.record) == [
            "event_id",
            "user_id",
            "event_type",
            "event_timestamp",
            "properties",
        ]
        assert isinstance(row.record["properties"], dict)
