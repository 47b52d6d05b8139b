"""The latency harness's arithmetic and table (the measurement itself needs `make dev`)."""

from __future__ import annotations

from bench.latency import PHASES, DropTiming, LatencyCase, format_case


def _drop(offset: float) -> DropTiming:
    return DropTiming(
        file="user_events/x.jsonl",
        events=1000,
        landed=100.0 + offset,
        ingest_created=110.0 + offset,
        ingest_started=115.0 + offset,
        ingest_ended=117.0 + offset,
        dbt_created=130.0 + offset,
        dbt_started=140.0 + offset,
        marts_at=160.0 + offset,
        staged=990,
    )


def test_phases_follow_the_drop_and_add_up_to_the_total() -> None:
    phases = _drop(0).phases()
    assert list(phases) == list(PHASES)
    assert phases == {
        "sensor": 10.0,
        "launch": 5.0,
        "ingest run": 2.0,
        "automation": 13.0,
        "dbt launch": 10.0,
        "to marts": 20.0,
        "total": 60.0,
    }
    assert sum(v for k, v in phases.items() if k != "total") == phases["total"]


def test_the_table_has_the_medians_and_every_total() -> None:
    case = LatencyCase("shipped defaults", {}, 1.0, [_drop(0), _drop(1), _drop(2)])
    case.drops[2].marts_at += 30  # a slow third drop moves the total's median, not its row
    row = next(line for line in format_case([case]).splitlines() if "shipped" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["shipped defaults", "3", "1,000"]
    assert cells[3:10] == ["10.0", "5.0", "2.0", "13.0", "10.0", "20.0", "60.0"]
    assert cells[10] == "60, 60, 90"
