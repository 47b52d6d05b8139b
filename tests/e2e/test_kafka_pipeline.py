"""End to end on a real broker: demo producer → sensor → run → Delta → dbt staging and windows.

The demo producer CLI publishes generated events (with the generator's defects and poison
messages) to ``user-events``; the Kafka sensor requests a run; the run lands the messages in
the raw and dead-letter tables; dbt builds ``stg_user_events`` and ``agg_events_per_minute``.
Then late events arrive and correct their windows, and a replay from offset 0 appends every
message again without changing staging or the windows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from deltalake import DeltaTable

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.ingestion.kafka import StreamConfig, kafka_assets, kafka_sensors
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.demo.produce import event_lines, produce
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.kafka import KafkaSettings
from assets_project.lib.lake import LakeLayout
from tests.services.tansu import TansuBroker

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TOPIC = "user-events"
SELECTION = ["raw/user_events", "stg_user_events", "agg_events_per_minute"]


def _produce_cli(broker: TansuBroker, events: int, seed: int, poison: int) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    command = [sys.executable, "-m", "assets_project.demo", "produce", "--topic", TOPIC]
    command += ["--events", str(events), "--seed", str(seed), "--poison", str(poison)]
    command += ["--partitions", "4"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"to {TOPIC} (4 partitions)" in done.stdout


def _run(
    lake: LakeResource, kafka: KafkaResource, instance: dg.DagsterInstance, run_config: object
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*kafka_assets, shop_dbt_models],
        selection=SELECTION,
        resources={
            "lake": lake,
            "kafka": kafka,
            "dbt": dbt_resource(),
        },
        instance=instance,
        run_config=run_config,
    )
    assert result.success
    return result


def _sensor_request(lake: LakeResource, kafka: KafkaResource) -> dg.RunRequest:
    (sensor,) = kafka_sensors
    with dg.build_sensor_context(resources={"lake": lake, "kafka": kafka}) as context:
        result = sensor(context)
    (request,) = result.run_requests
    return request


def _warehouse(lake: LakeResource, sql: str) -> list[tuple]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        return connection.sql(sql).fetchall()


def _windows(lake: LakeResource) -> list[tuple]:
    return _warehouse(
        lake,
        "select window_start, event_type, event_count, distinct_users, amount_total "
        "from main.agg_events_per_minute order by 1, 2",
    )


def _windows_from_scratch(lake: LakeResource) -> list[tuple]:
    """The windows as a full refresh computes them, straight from staging."""
    return _warehouse(
        lake,
        "select date_trunc('minute', event_timestamp), event_type, count(*), "
        "count(distinct user_id), coalesce(sum(amount), 0)::decimal(18, 2) "
        "from main.stg_user_events group by all order by 1, 2",
    )


def _grace_minutes() -> int:
    project = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())
    return int(project["vars"]["events_window_grace_minutes"])


def _object(line: bytes) -> dict:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _raw_event_ids(uri: str) -> Counter[str]:
    return Counter(DeltaTable(uri).to_pyarrow_table(columns=["event_id"])["event_id"].to_pylist())


def test_topic_to_staging_and_windows_exactly_once(
    kafka_broker: TansuBroker, lake: LakeResource, tmp_path: Path
) -> None:
    kafka = KafkaResource(bootstrap_servers=kafka_broker.bootstrap_servers)
    instance = dg.DagsterInstance.ephemeral()
    layout = lake.layout

    _produce_cli(kafka_broker, events=3000, seed=17, poison=5)
    request = _sensor_request(lake, kafka)
    first = _run(lake, kafka, instance, request.run_config)
    (materialization,) = first.asset_materializations_for_node("raw__user_events")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    raw_rows = DeltaTable(layout.raw_uri("user_events")).count()
    dlq_rows = DeltaTable(layout.dlq_uri("user_events")).to_pyarrow_table().num_rows
    assert meta["rows_in"] == raw_rows + dlq_rows == meta["messages"]
    assert dlq_rows >= 5

    # The stream lands exactly the rows the file channel lands for the same lines.
    reference = LakeLayout(tmp_path / "ref", str(tmp_path / "ref" / "lake"), tmp_path / "r.db")
    drop = tmp_path / "events.jsonl"
    drop.write_bytes(b"\n".join(event_lines(3000, seed=17)) + b"\n")
    ingest_file(drop, load_contract("user_events"), reference, source="user_events/e.jsonl")
    produced_valid = _raw_event_ids(reference.raw_uri("user_events"))
    assert _raw_event_ids(layout.raw_uri("user_events")) == produced_valid
    staged = _warehouse(lake, "select event_id from main.stg_user_events")
    assert sorted(e for (e,) in staged) == sorted(produced_valid)
    assert _windows(lake) == _windows_from_scratch(lake)
    before = _windows(lake)
    windows_before = {(w, t): n for w, t, n, *_ in before}

    # Late events: copies of recent valid events under new ids, so their windows must grow;
    # plus events from another seed spread over the whole month.
    _produce_cli(kafka_broker, events=400, seed=18, poison=0)
    recent = [_object(line) for line in event_lines(3000, seed=17)[-300:]]
    late = [
        {**event, "event_id": str(uuid.UUID(int=i + 1, version=4))}
        for i, event in enumerate(e for e in recent if e.get("event_id") in produced_valid)
    ][:20]
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    produce(settings, TOPIC, [json.dumps(e).encode() for e in late])
    later = _sensor_request(lake, kafka)
    assert later.run_key != request.run_key
    _run(lake, kafka, instance, later.run_config)
    windows = _windows(lake)
    # Windows within the grace period behind the newest one are exact; older ones are closed.
    cutoff = max(w for w, *_ in windows) - timedelta(minutes=_grace_minutes())
    scratch = _windows_from_scratch(lake)
    assert [w for w in windows if w[0] >= cutoff] == [w for w in scratch if w[0] >= cutoff]
    assert [w for w in windows if w[0] < cutoff] == [w for w in before if w[0] < cutoff]
    assert len([w for w in scratch if w[0] < cutoff]) > len([w for w in windows if w[0] < cutoff])
    counts = {(w, t): n for w, t, n, *_ in windows}
    grown = 0
    for event in late:
        start = datetime.fromisoformat(event["event_timestamp"].replace("Z", ""))
        key = (start.replace(second=0), event["event_type"])
        if key[0] >= cutoff:
            assert counts[key] > windows_before[key], key
            grown += 1
    assert grown >= 10
    staged_count = _warehouse(lake, "select count(*) from main.stg_user_events")[0][0]

    # Replay everything: raw doubles, staging and the windows do not change.
    raw_before = DeltaTable(layout.raw_uri("user_events")).count()
    replay = dg.RunConfig(ops={"raw__user_events": StreamConfig(replay_from_offset=0)})
    _run(lake, kafka, instance, replay)
    assert DeltaTable(layout.raw_uri("user_events")).count() == 2 * raw_before
    assert _warehouse(lake, "select count(*) from main.stg_user_events")[0][0] == staged_count
    assert _windows(lake) == windows
    with dg.build_sensor_context(resources={"lake": lake, "kafka": kafka}) as context:
        assert kafka_sensors[0](context).run_requests == []
