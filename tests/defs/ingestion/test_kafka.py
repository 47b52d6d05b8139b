"""The Kafka sensor and the stream raw asset, against a real broker (Tansu)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from assets_project.defs.ingestion.kafka import (
    NOT_CONFIGURED,
    StreamConfig,
    build_stream_asset,
    build_stream_sensor,
)
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.demo.produce import ensure_topic, event_lines, produce, with_poison
from assets_project.lib.contracts import load_contract
from assets_project.lib.kafka import KafkaSettings
from assets_project.lib.lake import open_table
from tests.services.tansu import TansuBroker

BASE = load_contract("user_events")


def _contract(topic: str):
    return BASE.model_copy(update={"kafka": BASE.kafka.model_copy(update={"topic": topic})})


def _kafka(broker: TansuBroker, **kwargs: object) -> KafkaResource:
    return KafkaResource(bootstrap_servers=broker.bootstrap_servers, **kwargs)


def _tick(contract, lake: LakeResource, kafka: KafkaResource, cursor: str | None = None):
    sensor = build_stream_sensor(contract)
    with dg.build_sensor_context(cursor=cursor, resources={"lake": lake, "kafka": kafka}) as ctx:
        return sensor(ctx)


def test_unconfigured_kafka_leaves_the_sensor_idle_and_fails_the_asset_clearly(
    lake: LakeResource,
) -> None:
    kafka = KafkaResource()
    result = _tick(BASE, lake, kafka)
    assert isinstance(result, dg.SkipReason)
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in str(result.skip_message)

    materialized = dg.materialize(
        [build_stream_asset(BASE)],
        resources={"lake": lake, "kafka": kafka},
        run_config={"ops": {"raw__user_events": {"config": {"channel": "kafka"}}}},
        raise_on_error=False,
    )
    assert not materialized.success
    failure = materialized.get_step_failure_events()[0]
    assert NOT_CONFIGURED in str(failure.event_specific_data.error)
    # Not retried: one attempt only.
    assert len([e for e in materialized.all_events if e.event_type_value == "STEP_START"]) == 1
    # Left to choose ("auto"), the asset takes the ready file drops instead, as `make dev` does.
    fallback = dg.materialize([build_stream_asset(BASE)], resources={"lake": lake, "kafka": kafka})
    [materialization] = fallback.asset_materializations_for_node("raw__user_events")
    assert materialization.metadata["channel"].value == "files"


def test_resource_from_env_reads_sasl_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)
    assert not KafkaResource.from_env().configured
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    plain = KafkaResource.from_env()
    assert plain.sasl_username is None
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc-lake")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    resource = KafkaResource.from_env()
    # Values stay environment references until the resource is used.
    assert isinstance(resource.sasl_password, dg.EnvVar)
    with dg.build_resources({"kafka": resource}) as built:
        config = built.kafka.settings.client_config()
    assert config["bootstrap.servers"] == "broker-1:9092,broker-2:9092"
    assert config["sasl.username"] == "svc-lake" and config["sasl.password"] == "s3cret"
    assert config["security.protocol"] == "SASL_SSL"


def test_sensor_requests_a_run_per_offset_range_and_the_asset_ingests_it(
    kafka_broker: TansuBroker, kafka_topic: str, lake: LakeResource
) -> None:
    contract = _contract(kafka_topic)
    kafka = _kafka(kafka_broker)
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    ensure_topic(settings, kafka_topic, 2)
    assert _tick(contract, lake, kafka).run_requests == []

    messages = with_poison(event_lines(500, seed=4), 3, seed=4)
    produce(settings, kafka_topic, messages)
    first = _tick(contract, lake, kafka)
    (request,) = first.run_requests
    assert request.run_key.startswith(f"{kafka_topic}:0:0-")
    assert ",1:0-" in request.run_key
    assert request.run_config["ops"]["raw__user_events"]["config"]["channel"] == "kafka"
    assert request.run_config["execution"] == {"config": {"in_process": {}}}
    # Same lag, same key: the run queue deduplicates it.
    assert _tick(contract, lake, kafka, first.cursor).run_requests[0].run_key == request.run_key
    # A sensor tick reads only: the source's tables are made by the run it requests.
    assert open_table(lake.layout.raw_uri("user_events")) is None
    assert open_table(lake.layout.dlq_uri("user_events")) is None

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [build_stream_asset(contract), build_contract_checks(contract)],
        resources={"lake": lake, "kafka": kafka},
        run_config=request.run_config,
        instance=instance,
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__user_events")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["channel"] == "kafka" and meta["caught_up"] is True
    assert meta["rows_in"] == meta["messages"] == len(messages)
    assert meta["rows_rejected"] >= 3
    raw = DeltaTable(lake.layout.raw_uri("user_events")).count()
    dlq = DeltaTable(lake.layout.dlq_uri("user_events")).to_pyarrow_table().num_rows
    assert raw + dlq == len(messages) and meta["dagster/row_count"] == raw
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["row_conservation"] is True

    # Caught up: no request; new messages: a new, different range.
    assert _tick(contract, lake, kafka).run_requests == []
    produce(settings, kafka_topic, event_lines(50, seed=8))
    (later,) = _tick(contract, lake, kafka).run_requests
    assert later.run_key != request.run_key


def test_sensor_waits_for_min_lag_until_max_wait(
    kafka_broker: TansuBroker, kafka_topic: str, lake: LakeResource
) -> None:
    contract = _contract(kafka_topic)
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    ensure_topic(settings, kafka_topic, 1)
    produce(settings, kafka_topic, event_lines(20, seed=2)[:5])
    patient = _kafka(kafka_broker, min_lag=1000, max_wait_seconds=0.5)
    waiting = _tick(contract, lake, patient)
    assert waiting.run_requests == []
    assert "below min_lag 1000" in str(waiting.skip_reason)
    time.sleep(0.6)
    assert len(_tick(contract, lake, patient, waiting.cursor).run_requests) == 1


def test_sensor_says_why_when_the_broker_is_unreachable(lake: LakeResource) -> None:
    with_port_closed = KafkaResource(bootstrap_servers="127.0.0.1:9", timeout_seconds=2)
    started = time.monotonic()
    result = _tick(BASE, lake, with_port_closed)
    assert isinstance(result, dg.SkipReason)
    assert "not reachable" in str(result.skip_message)
    assert time.monotonic() - started < 30


def test_file_drops_still_reach_the_same_raw_table(lake: LakeResource) -> None:
    line = (
        '{"event_id":"0a1b2c3d-0000-4000-8000-000000000001","user_id":1,"event_type":"click",'
        '"event_timestamp":"2026-01-05T10:11:12Z","properties":{}}\n'
    )
    drop = Path(lake.data_dir) / "landing" / "user_events" / "e.jsonl"
    drop.write_text(line + "not json\n")
    old = time.time() - 120
    os.utime(drop, (old, old))
    result = dg.materialize(
        [build_stream_asset(BASE)],
        resources={"lake": lake, "kafka": KafkaResource()},
        run_config=dg.RunConfig(ops={"raw__user_events": StreamConfig(path="user_events/e.jsonl")}),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__user_events")
    assert materialization.metadata["channel"].value == "files"
    rows = DeltaTable(lake.layout.raw_uri("user_events")).to_pyarrow_table().to_pylist()
    assert [(r["_source"], r["_source_line"]) for r in rows] == [("user_events/e.jsonl", 1)]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (StreamConfig(replay_from_timestamp="yesterday"), "is not an ISO 8601 time"),
        (
            StreamConfig(replay_from_offset=0, replay_from_timestamp="2026-01-01T00:00:00Z"),
            "not both",
        ),
    ],
)
def test_bad_replay_config_fails_without_retries(
    kafka_broker: TansuBroker, lake: LakeResource, config: StreamConfig, message: str
) -> None:
    result = dg.materialize(
        [build_stream_asset(BASE)],
        resources={"lake": lake, "kafka": _kafka(kafka_broker)},
        run_config=dg.RunConfig(ops={"raw__user_events": config}),
        raise_on_error=False,
    )
    assert not result.success
    assert message in str(result.get_step_failure_events()[0].event_specific_data.error)
    assert len([e for e in result.all_events if e.event_type_value == "STEP_START"]) == 1
