"""Anomaly and event-time freshness checks on real ingestion runs of generated drops: each
passes on good data and fails with its severity on a shrunken, null-spiked, empty, late or
stopped source, or a mart whose row count collapsed overnight."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.events import StepMaterializationData  # no public constructor for it

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.kafka import build_stream_asset
from assets_project.defs.metadata import NULL_COUNTS
from assets_project.defs.quality.anomalies import (
    build_anomaly_checks,
    build_day_over_day_check,
    build_source_stopped_check,
)
from assets_project.defs.quality.freshness import build_event_time_freshness_check
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.demo.generate import Variants, generate
from assets_project.lib.contracts import load_contract
from assets_project.lib.landing import MARKER_SUFFIX
from assets_project.lib.metrics import NEWEST_EVENT_TIME

EVENTS = load_contract("user_events")
EVENTS_KEY = dg.AssetKey(["raw", "user_events"])
FILES = 7
SIZE = 1400  # 200 events per file


def _assets() -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    return [
        build_stream_asset(EVENTS),
        build_anomaly_checks(EVENTS),
        build_event_time_freshness_check(EVENTS),
    ]


def _ingest(
    lake: LakeResource, instance: dg.DagsterInstance, drop: Path
) -> dict[str, dg.AssetCheckEvaluation]:
    """Land ``drop`` as a new file of user_events and ingest it with the checks (an empty file
    with its ``.done`` marker: the producer says it is complete, so it is read at once)."""
    target = Path(lake.data_dir) / "landing" / "user_events" / f"{uuid.uuid4().hex}.jsonl"
    shutil.copyfile(drop, target)
    os.utime(target, (time.time() - 60, time.time() - 60))
    if target.stat().st_size == 0:
        target.with_name(target.name + MARKER_SUFFIX).touch()
    result = dg.materialize(
        _assets(),
        resources={"lake": lake, "kafka": KafkaResource()},
        instance=instance,
        raise_on_error=False,
    )
    (materialization,) = result.asset_materializations_for_node("raw__user_events")
    # What the checks read: the batch's null counts and the table's newest event.
    nulls = materialization.metadata[NULL_COUNTS].value
    assert isinstance(nulls, dict) and set(nulls["columns"]) == {c.name for c in EVENTS.columns}
    assert isinstance(materialization.metadata[NEWEST_EVENT_TIME], dg.TimestampMetadataValue)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _events(out: Path, number: int) -> Path:
    return out / "user_events" / f"user_events_{number:04d}.jsonl"


def _history(lake: LakeResource, instance: dg.DagsterInstance, out: Path) -> None:
    for number in range(1, 6):  # five batches: enough history to judge the next
        checks = _ingest(lake, instance, _events(out, number))
        assert checks["volume_anomaly"].passed
        assert checks["volume_anomaly"].description.startswith("learning")


def test_volume_anomaly(lake: LakeResource, tmp_path: Path) -> None:
    good = generate(tmp_path / "good", SIZE, 5, FILES).out
    shrunk = generate(tmp_path / "shrunk", SIZE, 5, FILES, variants=Variants(shrink=0.1)).out
    with dg.instance_for_test() as instance:
        _history(lake, instance, good)
        normal = _ingest(lake, instance, _events(good, 6))
        assert normal["volume_anomaly"].passed, normal["volume_anomaly"].description
        assert normal["properties_null_rate"].passed
        assert normal["amount_null_rate"].passed
        assert normal["volume_anomaly"].metadata["history_size"].value == 5

        small = _ingest(lake, instance, _events(shrunk, FILES))
        assert not small["volume_anomaly"].passed
        assert small["volume_anomaly"].severity == dg.AssetCheckSeverity.WARN
        assert small["volume_anomaly"].metadata["value"].value <= 21

        empty = Path(tmp_path / "empty.jsonl")
        empty.write_text("")
        # An empty drop is not read (it waits for content, then is quarantined): its run brings
        # no batch (the verdict for a batch of zero records, ERROR, is tests/lib/test_anomaly.py's).
        zero = _ingest(lake, instance, empty)
        assert zero["volume_anomaly"].passed
        assert zero["volume_anomaly"].description == "No new records arrived: no batch."


def test_null_rate_anomaly(lake: LakeResource, tmp_path: Path) -> None:
    good = generate(tmp_path / "good", SIZE, 5, FILES).out
    spiked = generate(tmp_path / "spiked", SIZE, 5, FILES, variants=Variants(null_spike=0.5)).out
    with dg.instance_for_test() as instance:
        _history(lake, instance, good)
        checks = _ingest(lake, instance, _events(spiked, FILES))
    spiked_rate = checks["properties_null_rate"]
    assert not spiked_rate.passed
    assert spiked_rate.severity == dg.AssetCheckSeverity.WARN
    assert spiked_rate.metadata["value"].value >= 0.45
    assert checks["event_id_null_rate"].passed  # required, still always there
    assert checks["properties_null_rate"].metadata["nulls"].value >= 90  # of about 200
    assert checks["volume_anomaly"].passed


def _newest_event(drop: Path) -> datetime:
    """The newest valid event time of a drop (defect lines are no event or no valid time)."""
    times = []
    for line in drop.read_text().splitlines():
        try:
            value = json.loads(line)["event_timestamp"]
            times.append(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
        except (ValueError, TypeError, KeyError):
            continue
    return max(times)


def _drop_with_age(folder: Path, seed: int, age: timedelta, now: datetime) -> Path:
    """A drop of user_events whose newest event happened ``age`` before ``now``."""
    probe = _events(generate(folder, 300, seed, 1, variants=Variants(ends_at=now)).out, 1)
    ends_at = now + (now - _newest_event(probe)) - age
    out = generate(folder, 300, seed, 1, overwrite=True, variants=Variants(ends_at=ends_at)).out
    return _events(out, 1)


def test_event_time_freshness(lake: LakeResource, tmp_path: Path) -> None:
    """Windows of user_events: warn after 30 min, fail after 120 min (newest event in data)."""
    now = datetime.now(UTC).replace(microsecond=0)
    expected = [
        (timedelta(hours=3), False, dg.AssetCheckSeverity.ERROR),
        (timedelta(hours=1), False, dg.AssetCheckSeverity.WARN),
        (timedelta(minutes=5), True, None),
    ]
    with dg.instance_for_test() as instance:
        for seed, (age, passed, severity) in enumerate(expected):
            drop = _drop_with_age(tmp_path / str(seed), seed, age, now)
            assert _newest_event(drop) == now - age
            check = _ingest(lake, instance, drop)["event_time_freshness"]
            assert check.passed is passed, check.description
            if severity is not None:
                assert check.severity == severity
            newest = check.metadata["newest_event_time"].value
            assert datetime.fromtimestamp(newest, UTC) == now - age


def _materialized_at(
    instance: dg.DagsterInstance, key: dg.AssetKey, when: datetime, **metadata: object
) -> str:
    """Store a materialization of ``key`` as a run at ``when`` wrote it (the instance's history
    of earlier days, which a test cannot wait for); returns its run id."""
    run_id = str(uuid.uuid4())
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="history",
        event_specific_data=StepMaterializationData(
            dg.AssetMaterialization(asset_key=key, metadata=metadata)  # type: ignore[arg-type]
        ),
    )
    instance.store_event(
        dg.EventLogEntry(
            error_info=None,
            level=logging.INFO,
            user_message="",
            run_id=run_id,
            timestamp=when.timestamp(),
            dagster_event=event,
        )
    )
    return run_id


def _check_only(
    instance: dg.DagsterInstance,
    assets: list[dg.AssetsDefinition],
    check: dg.AssetChecksDefinition,
    resources: dict[str, object],
) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [*assets, check],
        selection=dg.AssetSelection.checks(check),
        resources=resources,
        instance=instance,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_source_stopped(lake: LakeResource) -> None:
    check = build_source_stopped_check(EVENTS)
    resources = {"lake": lake, "kafka": KafkaResource()}
    now = datetime.now(UTC)
    with dg.instance_for_test() as instance:
        for hours_ago in range(10, 4, -1):  # hourly batches until five hours ago
            _materialized_at(instance, EVENTS_KEY, now - timedelta(hours=hours_ago))
        stopped = _check_only(instance, [build_stream_asset(EVENTS)], check, resources)
        assert not stopped.passed and stopped.severity == dg.AssetCheckSeverity.ERROR
        assert stopped.metadata["usual_interval_s"].value == 3600

        _materialized_at(instance, EVENTS_KEY, now - timedelta(minutes=30))
        flowing = _check_only(instance, [build_stream_asset(EVENTS)], check, resources)
        assert flowing.passed, flowing.description


def test_mart_row_count_day_over_day(lake: LakeResource) -> None:
    key = dg.AssetKey(["fct_daily_revenue"])
    check = build_day_over_day_check(key)
    resources = {"lake": lake, "dbt": dbt_resource()}
    now = datetime.now(UTC)
    with dg.instance_for_test() as instance:
        _materialized_at(instance, key, now - timedelta(days=1), **{"dagster/row_count": 100})
        _materialized_at(instance, key, now, **{"dagster/row_count": 110})
        steady = _check_only(instance, [shop_dbt_models], check, resources)
        assert steady.passed, steady.description
        assert steady.metadata["previous_rows"].value == 100

        _materialized_at(instance, key, now, **{"dagster/row_count": 30})
        collapsed = _check_only(instance, [shop_dbt_models], check, resources)
        assert not collapsed.passed
        assert collapsed.severity == dg.AssetCheckSeverity.WARN
        assert collapsed.metadata["previous_rows"].value == 100  # not today's earlier 110


def test_a_run_that_found_no_file_is_no_batch(lake: LakeResource) -> None:
    """Materializing a raw asset with nothing in its landing folder (e.g. from the UI) reads
    no file: no batch of zero rows, so the volume check passes (source_stopped judges
    silence)."""
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            _assets(),
            resources={"lake": lake, "kafka": KafkaResource()},
            instance=instance,
            raise_on_error=False,
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["volume_anomaly"].passed
    assert checks["volume_anomaly"].description == "No new records arrived: no batch."
