"""Kafka topic → raw and dead-letter Delta tables, against a real broker (Tansu)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable

from assets_project.demo.produce import (
    POISON,
    ProduceReport,
    ensure_topic,
    event_lines,
    produce,
    with_poison,
)
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.kafka import (
    KEY_COLUMN,
    ConcurrentIngestionError,
    KafkaSettings,
    StoredOffsets,
    StreamIngestor,
    StreamResult,
    lag_ranges,
    source_name,
    stored_offsets,
    transaction_app_id,
)
from assets_project.lib.lake import LakeLayout, open_table
from tests.services.tansu import TansuBroker

EVENTS = load_contract("user_events")


def _settings(broker: TansuBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers)


def test_lag_is_the_offsets_between_the_lower_stored_offset_and_the_end() -> None:
    stored = StoredOffsets(raw={0: 10, 1: None, 2: 7}, dlq={0: 8, 1: 3, 2: 7})
    # Partition 0 resumes at the lower of its two tables, 1 was never stored in raw (from 0),
    # 2 is at its end.
    assert lag_ranges({0: 12, 1: 5, 2: 7}, stored) == {0: (8, 12), 1: (0, 5)}


def test_stored_offsets_of_a_source_never_ingested_are_none_and_create_nothing(
    layout: LakeLayout,
) -> None:
    stored = stored_offsets(layout, EVENTS, "user-events", range(2))
    assert stored.raw == stored.dlq == {0: None, 1: None}
    assert open_table(layout.raw_uri("user_events")) is None
    assert open_table(layout.dlq_uri("user_events")) is None


def _publish(
    broker: TansuBroker, topic: str, messages: list[bytes], partitions: int = 3, poison: int = 0
) -> ProduceReport:
    ensure_topic(_settings(broker), topic, partitions)
    return produce(_settings(broker), topic, messages, track=True, poison=poison)


def _ingest(
    broker: TansuBroker, layout: LakeLayout, topic: str, batch: str = "run-1", **kwargs: object
) -> StreamResult:
    ingestor = StreamIngestor(
        _settings(broker),
        EVENTS,
        layout,
        topic=topic,
        batch_id=batch,
        group_id=f"g-{topic}",
        chunk_messages=int(kwargs.pop("chunk_messages", 50_000)),  # type: ignore[call-overload]
    )
    options: dict = {"max_messages": 1_000_000, "max_seconds": 60, **kwargs}
    return ingestor.run(**options)


def _rows(uri: str, columns: list[str]) -> list[dict]:
    return DeltaTable(uri).to_pyarrow_table(columns=columns).to_pylist()


def _identities(layout: LakeLayout) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    raw = [
        (r["_source"], r["_source_line"])
        for r in _rows(layout.raw_uri("user_events"), ["_source", "_source_line"])
    ]
    dlq = [
        (r["_source"], r["_source_line"])
        for r in _rows(layout.dlq_uri("user_events"), ["_source", "_source_line"])
    ]
    return raw, dlq


def _produced(report: ProduceReport, topic: str) -> dict[tuple[str, int], bytes]:
    return {(source_name(topic, p), o): value for _, p, o, value in report.delivered}


def test_valid_events_go_to_raw_and_poison_to_dead_letter_exactly_once(
    kafka_broker: TansuBroker, kafka_topic: str, lake_layout: LakeLayout
) -> None:
    messages = with_poison(event_lines(600, seed=3), len(POISON), seed=3)
    report = _publish(kafka_broker, kafka_topic, messages, poison=len(POISON))
    produced = _produced(report, kafka_topic)

    result = _ingest(kafka_broker, lake_layout, kafka_topic)
    assert result.caught_up
    assert result.messages == result.rows_in == len(messages)
    raw, dlq = _identities(lake_layout)
    assert len(raw) == len(set(raw)) and len(dlq) == len(set(dlq))
    assert set(raw) | set(dlq) == set(produced) and not set(raw) & set(dlq)
    assert (result.rows_written, result.rows_rejected) == (len(raw), len(dlq))

    # Each raw row is the message at its offset.
    for row in _rows(lake_layout.raw_uri("user_events"), ["event_id", "_source", "_source_line"]):
        value = produced[(row["_source"], row["_source_line"])]
        assert json.loads(value)["event_id"] == row["event_id"]

    # Every poison message is a dead letter with topic, partition, offset, key, text, reason.
    letters = {
        (r["_source"], r["_source_line"]): r
        for r in _rows(
            lake_layout.dlq_uri("user_events"),
            ["_source", "_source_line", "record", "reason", KEY_COLUMN],
        )
    }
    poison = {k: v for k, v in produced.items() if v in POISON}
    assert len(poison) == len(POISON)
    for identity, value in poison.items():
        letter = letters[identity]
        assert letter["record"] == value.decode("utf-8", "backslashreplace")
        assert letter["reason"]
        assert letter[KEY_COLUMN] is None  # poison has no user_id to key by
    assert any("not valid UTF-8" in letters[k]["reason"] for k in poison)
    assert any(letter[KEY_COLUMN] for letter in letters.values())  # keyed invalid events

    # The offsets are stored in both tables; a second run finds nothing to read.
    ends: dict[int, int] = {}
    for _, partition, offset, _ in report.delivered:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    for uri in (lake_layout.raw_uri("user_events"), lake_layout.dlq_uri("user_events")):
        table = DeltaTable(uri)
        for partition, end in ends.items():
            assert table.transaction_version(transaction_app_id(kafka_topic, partition)) == end
    again = _ingest(kafka_broker, lake_layout, kafka_topic, batch="run-2")
    assert (again.messages, again.rows_in) == (0, 0)
    assert _identities(lake_layout) == (raw, dlq)


def test_bounded_runs_resume_from_the_lake_not_the_consumer_group(
    kafka_broker: TansuBroker, kafka_topic: str, layout: LakeLayout
) -> None:
    messages = event_lines(3000, seed=5)
    report = _publish(kafka_broker, kafka_topic, messages, partitions=4)
    settings = _settings(kafka_broker)
    group = f"g-{kafka_topic}"
    # A consumer group that claims everything was read: the ingestion must not trust it.
    with_group = Consumer(settings.client_config(**{"group.id": group}))
    ends = {p: max(o for _, q, o, _ in report.delivered if q == p) + 1 for p in range(4)}
    with_group.commit(
        offsets=[TopicPartition(kafka_topic, p, o) for p, o in ends.items()], asynchronous=False
    )
    with_group.close()

    runs = []
    while True:
        result = _ingest(
            kafka_broker,
            layout,
            kafka_topic,
            batch=f"run-{len(runs)}",
            max_messages=700,
            chunk_messages=300,
        )
        runs.append(result)
        if result.messages == 0:
            break
        assert len(runs) < 20
    assert len(runs) >= 5 and runs[0].stopped_by == "max_messages"
    raw, dlq = _identities(layout)
    assert sorted(raw + dlq) == sorted(_produced(report, kafka_topic))

    # Kafka's group offsets follow the lake's, for lag tools.
    probe = Consumer(settings.client_config(**{"group.id": group}))
    committed = probe.committed([TopicPartition(kafka_topic, p) for p in range(4)], timeout=10)
    probe.close()
    assert {tp.partition: tp.offset for tp in committed} == ends
    stored = stored_offsets(layout, EVENTS, kafka_topic, range(4))
    assert stored.raw == stored.dlq == ends


def test_replay_from_offset_appends_again_and_stored_offsets_never_move_back(
    kafka_broker: TansuBroker, kafka_topic: str, layout: LakeLayout
) -> None:
    report = _publish(kafka_broker, kafka_topic, event_lines(400, seed=9), partitions=2)
    first = _ingest(kafka_broker, layout, kafka_topic)
    before = stored_offsets(layout, EVENTS, kafka_topic, range(2))
    replay = _ingest(kafka_broker, layout, kafka_topic, batch="replay", replay_from_offset=0)
    assert replay.messages == first.messages == len(report.delivered)
    raw, dlq = _identities(layout)
    assert len(raw) == 2 * first.rows_written and len(set(raw)) == first.rows_written
    assert len(dlq) == 2 * first.rows_rejected
    assert stored_offsets(layout, EVENTS, kafka_topic, range(2)) == before

    # A replay from an offset past some partition's end re-reads nothing there.
    part = _ingest(kafka_broker, layout, kafka_topic, batch="tail", replay_from_offset=10**6)
    assert part.messages == 0
    assert stored_offsets(layout, EVENTS, kafka_topic, range(2)) == before


def test_replay_from_timestamp_rereads_only_later_messages(
    kafka_broker: TansuBroker, kafka_topic: str, layout: LakeLayout
) -> None:
    lines = event_lines(600, seed=11)
    _publish(kafka_broker, kafka_topic, lines[:300], partitions=2)
    time.sleep(1.2)
    middle = int(time.time() * 1000)
    time.sleep(0.2)
    later = _publish(kafka_broker, kafka_topic, lines[300:], partitions=2)
    first = _ingest(kafka_broker, layout, kafka_topic)
    assert first.messages == len(lines)
    replay = _ingest(
        kafka_broker, layout, kafka_topic, batch="replay", replay_from_timestamp_ms=middle
    )
    assert replay.messages == len(later.delivered)
    replayed = {
        (r["_source"], r["_source_line"])
        for table in ("raw", "dlq")
        for r in _rows(
            getattr(layout, f"{table}_uri")("user_events"),
            ["_source", "_source_line", "_batch_id"],
        )
        if r["_batch_id"] == "replay"
    }
    assert replayed == set(_produced(later, kafka_topic))


def test_a_run_that_lost_a_race_commits_nothing(
    kafka_broker: TansuBroker,
    kafka_topic: str,
    lake_layout: LakeLayout,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runs read the same offsets; the one that would commit second fails instead."""
    report = _publish(kafka_broker, kafka_topic, event_lines(300, seed=13), partitions=2)
    original = StreamIngestor._commit_chunk

    def others_commit_first(self: StreamIngestor, *args: object) -> None:
        if self.batch_id == "slow":
            assert _ingest(kafka_broker, lake_layout, kafka_topic, batch="fast").messages > 0
        original(self, *args)

    monkeypatch.setattr(StreamIngestor, "_commit_chunk", others_commit_first)
    with pytest.raises(ConcurrentIngestionError, match="another run ingested it meanwhile"):
        _ingest(kafka_broker, lake_layout, kafka_topic, batch="slow")
    raw, dlq = _identities(lake_layout)
    assert sorted(raw + dlq) == sorted(_produced(report, kafka_topic))
    batches = {r["_batch_id"] for r in _rows(lake_layout.raw_uri("user_events"), ["_batch_id"])}
    assert batches == {"fast"}


def test_files_and_the_topic_share_the_raw_and_dead_letter_tables(
    kafka_broker: TansuBroker, kafka_topic: str, layout: LakeLayout
) -> None:
    _publish(kafka_broker, kafka_topic, [b"not json", *event_lines(50, seed=2)], partitions=1)
    streamed = _ingest(kafka_broker, layout, kafka_topic)
    drop = layout.landing_dir / "user_events" / "e.jsonl"
    drop.write_bytes(b"\n".join([*event_lines(60, seed=3), b"[1, 2]"]) + b"\n")
    filed = ingest_file(drop, EVENTS, layout, source="user_events/e.jsonl")
    letters = _rows(layout.dlq_uri("user_events"), ["_source", KEY_COLUMN])
    by_channel = {r["_source"].split("/")[0]: r for r in letters}
    assert set(by_channel) == {f"kafka:{kafka_topic}", "user_events"}
    assert all(r[KEY_COLUMN] is None for r in letters if r["_source"].startswith("user_events/"))
    assert len(letters) == streamed.rows_rejected + filed.rows_rejected
    raw = DeltaTable(layout.raw_uri("user_events")).count()
    assert raw == streamed.rows_written + filed.rows_written


def test_out_of_range_times_and_overprecise_amounts_are_dead_letters(
    kafka_broker: TansuBroker, kafka_topic: str, layout: LakeLayout
) -> None:
    """A message stamped 'infinity' or year 10000 must not make the raw table unreadable."""
    from assets_project.lib.lake import lake_connection, register_delta

    def event(n: int, timestamp: str, amount: str = "1") -> bytes:
        return (
            f'{{"event_id":"0a1b2c3d-0000-4000-8000-{n:012d}","user_id":1,'
            f'"event_type":"purchase","event_timestamp":"{timestamp}",'
            f'"properties":{{"amount":{amount}}}}}'
        ).encode()

    bad = {
        event(2, "infinity"): "event_timestamp: outside the supported range",
        event(3, "-infinity"): "event_timestamp: outside the supported range",
        event(4, "10000-01-01T00:00:00Z"): "event_timestamp: outside the supported range",
        event(5, "9999-12-31T23:30:00-01:00"): "event_timestamp: outside the supported range",
        event(6, "epoch"): "event_timestamp: not a valid timestamp",
        event(7, "2026-01-05T10:11:12Z", "12.345"): "amount: more than 2 digits after",
    }
    _publish(kafka_broker, kafka_topic, [event(1, "2026-01-05T10:11:12Z"), *bad], partitions=1)
    first = _ingest(kafka_broker, layout, kafka_topic)
    assert (first.rows_in, first.rows_written, first.rows_rejected) == (7, 1, 6)
    letters = {
        r["record"].encode(): r["reason"]
        for r in _rows(layout.dlq_uri("user_events"), ["record", "reason"])
    }
    assert set(letters) == set(bad)
    for message, reason in bad.items():
        assert letters[message].startswith(reason)

    _publish(kafka_broker, kafka_topic, [event(8, "2026-01-06T10:11:12Z")], partitions=1)
    second = _ingest(kafka_broker, layout, kafka_topic, batch="run-2")
    assert (second.rows_in, second.rows_written) == (1, 1)
    raw = DeltaTable(layout.raw_uri("user_events"))
    rows = raw.to_pyarrow_table().to_pylist()
    with lake_connection() as connection:
        register_delta(connection, "raw", raw)
        assert len(connection.sql("SELECT * FROM raw").fetchall()) == len(rows) == 2
