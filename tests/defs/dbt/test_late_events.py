"""Late events in windows closed to them: counted, reported, and fixed by a full refresh.

Real dbt on DuckDB (issue 11, item 11): events are ingested from a file drop and the windows
built; then events older than ``events_window_grace_minutes`` behind the newest window arrive.
The incremental build leaves them out of their windows, and the WARN check
``assert_agg_events_per_minute_counts_every_event`` and the mart's ``late_events_ignored``
metadata say how many; ``agg_events_full_refresh_job`` counts them and the check passes again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from assets_project.defs.dbt.assets import LATE_EVENTS_CHECK, shop_dbt_models
from assets_project.defs.dbt.schedules import (
    agg_events_full_refresh_job,
    daily_agg_events_full_refresh_schedule,
)
from assets_project.defs.resources import LakeResource
from tests.e2e.pipeline import FILES_ONLY, RAW_ASSETS, pipeline_resources

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SELECTION = ["raw/user_events", "stg_user_events", "agg_events_per_minute"]
NEWEST = datetime(2026, 3, 20, 12, 0)
GRACE = timedelta(
    minutes=yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"][
        "events_window_grace_minutes"
    ]
)


def _drop(lake_dir: Path, name: str, times: list[datetime]) -> None:
    """A JSON-lines drop of one click per timestamp, by user 1."""
    lines = [
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "user_id": 1,
                "event_type": "click",
                "event_timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "properties": {"page": "/"},
            }
        )
        for at in times
    ]
    path = lake_dir / "landing" / "user_events" / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _defs(lake: LakeResource) -> dg.Definitions:
    return dg.Definitions(
        assets=[*RAW_ASSETS, shop_dbt_models],
        jobs=[agg_events_full_refresh_job],
        resources=pipeline_resources(lake),
    )


def _ingest_and_build(
    lake: LakeResource, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Ingest the ready event drops, then build staging and the windows incrementally."""
    result = dg.materialize(
        [*RAW_ASSETS, shop_dbt_models],
        selection=SELECTION,
        resources=pipeline_resources(lake),
        instance=instance,
        run_config=FILES_ONLY,
    )
    assert result.success
    return result


def _late_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.asset_check_key == LATE_EVENTS_CHECK
    ]
    return evaluation


def _late_metadata(result: dg.ExecuteInProcessResult) -> int:
    (materialization,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == LATE_EVENTS_CHECK.asset_key
    ]
    return materialization.metadata["late_events_ignored"].value


def _window_counts(lake_dir: Path) -> dict[datetime, int]:
    with duckdb.connect(str(lake_dir / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.sql(
            "select window_start, event_count from main.agg_events_per_minute"
        ).fetchall()
    return dict(rows)


def test_late_events_are_counted_and_a_full_refresh_corrects_them(lake: LakeResource) -> None:
    lake_dir = Path(lake.data_dir)
    defs = _defs(lake)
    instance = dg.DagsterInstance.ephemeral()
    recent = [NEWEST - timedelta(minutes=m) for m in range(5)]
    _drop(lake_dir, "a.jsonl", recent)
    first = _ingest_and_build(lake, instance)
    assert _late_check(first).passed
    assert _late_metadata(first) == 0

    # Three events in a window closed to late events, one inside the grace period.
    closed = NEWEST - GRACE - timedelta(days=1)
    open_window = NEWEST - timedelta(minutes=30)
    _drop(lake_dir, "b.jsonl", [closed, closed + timedelta(seconds=5), closed, open_window])
    second = _ingest_and_build(lake, instance)
    check = _late_check(second)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["dagster_dbt/failed_row_count"].value == 3
    assert _late_metadata(second) == 3
    windows = _window_counts(lake_dir)
    assert closed.replace(second=0) not in windows  # the closed window ignored its events
    assert windows[open_window] == 1  # the open one took its late event

    # The full refresh, as the job (and its daily schedule) runs it.
    assert daily_agg_events_full_refresh_schedule.job_name == agg_events_full_refresh_job.name
    refresh = defs.resolve_job_def(agg_events_full_refresh_job.name).execute_in_process(
        instance=instance
    )
    assert refresh.success
    built = {e.asset_key.to_user_string() for e in refresh.get_asset_materialization_events()}
    assert built == {"agg_events_per_minute"}
    assert _late_check(refresh).passed
    assert _late_metadata(refresh) == 0
    windows = _window_counts(lake_dir)
    assert windows[closed.replace(second=0)] == 3
    assert sum(windows.values()) == 9
