"""Publish demo user events to a Kafka topic, defects and poison messages included.

The events are the JSON lines of the demo generator (``demo.generate``: duplicates, missing and
wrong values, unknown enums, malformed and non-object lines, late events), in file order, keyed
by ``user_id`` where the line has one (so one user's events keep their order in one partition).
``poison`` extra messages that are not JSON at all (text, bytes that are not UTF-8, an empty
value) are spread among them. The topic is created with ``partitions`` partitions if missing.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from assets_project.demo.generate import generate
from assets_project.lib.kafka import KafkaSettings

log = logging.getLogger(__name__)

POISON: tuple[bytes, ...] = (
    b"this is not json",
    b"\xff\xfe\x00 not UTF-8 \xc3\x28",
    b'{"event_id": "cut off in the mid',
    b"",
    b"\x00\x01\x02\x03",
)
_PRODUCER_DEFAULTS: dict[str, object] = {
    "acks": "all",
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}


@dataclass
class ProduceReport:
    """What was published; ``delivered`` only when tracking was asked for."""

    topic: str
    messages: int = 0
    events: int = 0
    poison: int = 0
    seconds: float = 0.0
    delivered: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    """(sequence number, partition, offset, value) per message, when ``track`` is set."""


def ensure_topic(settings: KafkaSettings, topic: str, partitions: int, timeout: float = 15) -> int:
    """Create ``topic`` with ``partitions`` partitions unless it exists; its partition count."""
    admin = AdminClient(settings.client_config())
    # All topics: a metadata request naming the topic may auto-create it with defaults.
    existing = admin.list_topics(timeout=timeout).topics.get(topic)
    if existing is not None and existing.error is None and existing.partitions:
        return len(existing.partitions)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    return partitions


def event_lines(events: int, seed: int) -> list[bytes]:
    """The demo generator's user-event lines for ``events`` events (with its defects)."""
    with tempfile.TemporaryDirectory(prefix="demo-events-") as folder:
        generate(Path(folder), size=events, seed=seed, files=1)
        text = next(Path(folder, "user_events").glob("*.jsonl")).read_bytes()
    return [line for line in text.split(b"\n") if line.strip()]


def _key(line: bytes) -> bytes | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    user = record.get("user_id") if isinstance(record, dict) else None
    return None if user is None else str(user).encode()


def with_poison(lines: list[bytes], poison: int, seed: int) -> list[bytes]:
    """``lines`` with ``poison`` messages that are not JSON inserted at random places."""
    rng = random.Random(seed)
    out = list(lines)
    for i in range(poison):
        out.insert(rng.randrange(len(out) + 1), POISON[i % len(POISON)])
    return out


def produce(
    settings: KafkaSettings,
    topic: str,
    messages: list[bytes],
    *,
    rate: float | None = None,
    track: bool = False,
    poison: int = 0,
) -> ProduceReport:
    """Publish ``messages`` in order (at ``rate`` messages/s, or as fast as possible)."""
    report = ProduceReport(topic=topic, messages=len(messages), poison=poison)
    report.events = len(messages) - poison
    producer = Producer(settings.client_config(**_PRODUCER_DEFAULTS))
    errors: list[str] = []

    def delivered(sequence: int, value: bytes):
        def callback(error: KafkaError | None, message: object) -> None:
            if error is not None:
                errors.append(str(error))
            elif track:
                report.delivered.append(
                    (sequence, message.partition(), message.offset(), value)  # type: ignore[attr-defined]
                )

        return callback

    started = time.perf_counter()
    for sequence, value in enumerate(messages):
        if rate:
            due = started + sequence / rate
            pause = due - time.perf_counter()
            if pause > 0:
                producer.poll(pause)
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=_key(value),
                    on_delivery=delivered(sequence, value),
                )
                break
            except BufferError:
                producer.poll(0.05)
        if sequence % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    report.seconds = time.perf_counter() - started
    if remaining or errors:
        raise KafkaException(
            f"{remaining} message(s) not delivered; errors: {'; '.join(errors[:5])}"
        )
    if track:
        report.delivered.sort()
    return report
