"""Where a topic's partitions are: the next offsets stored in the lake, the ends in Kafka,
and the lag between them.

The offsets of a source live in its Delta tables, as the version of one app transaction per
topic-partition (see :func:`transaction_app_id`). Reading them never writes: a source whose
tables do not exist yet has stored nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from assets_project.lib.contracts import Contract
from assets_project.lib.kafka.settings import KafkaSettings
from assets_project.lib.lake import LakeLayout, open_table


def transaction_app_id(topic: str, partition: int) -> str:
    """Delta app transaction id holding the next offset of one topic-partition."""
    return f"kafka:{topic}:{partition}"


def source_name(topic: str, partition: int) -> str:
    """``_source`` of the rows read from one topic-partition (``_source_line`` is the offset)."""
    return f"kafka:{topic}/{partition}"


def topic_partitions(client: Consumer, topic: str, timeout: float) -> list[int]:
    """Partition ids of ``topic``; raises KafkaException when it does not exist."""
    metadata = client.list_topics(topic, timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        error = described.error if described is not None else "not in the metadata"
        raise KafkaException(f"topic {topic!r} is not available: {error}")
    return sorted(described.partitions)


@dataclass(frozen=True)
class StoredOffsets:
    """Next offset per partition as committed with the rows of each table (None: never)."""

    raw: dict[int, int | None]
    dlq: dict[int, int | None]

    def resume_at(self, partition: int) -> int | None:
        """Where to start reading: the lower of the two tables' positions."""
        values = [self.raw.get(partition), self.dlq.get(partition)]
        if any(v is None for v in values):
            return None
        return min(v for v in values if v is not None)


def stored_offsets(
    layout: LakeLayout, contract: Contract, topic: str, partitions: Iterable[int]
) -> StoredOffsets:
    """The offsets stored in the Delta tables of ``contract``'s source (None where a table
    does not exist yet); reads only."""
    raw = open_table(layout.raw_uri(contract.name))
    dlq = open_table(layout.dlq_uri(contract.name))
    parts = list(partitions)
    return StoredOffsets(
        raw={
            p: raw.transaction_version(transaction_app_id(topic, p)) if raw else None for p in parts
        },
        dlq={
            p: dlq.transaction_version(transaction_app_id(topic, p)) if dlq else None for p in parts
        },
    )


def end_offsets(
    client: Consumer, topic: str, partitions: Iterable[int], timeout: float
) -> dict[int, int]:
    """High watermark per partition (the offset the next produced message will get)."""
    return {
        p: client.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
        for p in partitions
    }


def lag_ranges(ends: dict[int, int], stored: StoredOffsets) -> dict[int, tuple[int, int]]:
    """Per partition with unread messages: (stored next offset, end offset)."""
    ranges = {}
    for partition, end in ends.items():
        start = stored.resume_at(partition) or 0
        if end > start:
            ranges[partition] = (start, end)
    return ranges


def unread_ranges(
    settings: KafkaSettings,
    layout: LakeLayout,
    contract: Contract,
    topic: str,
    *,
    group_id: str,
    timeout: float,
) -> dict[int, tuple[int, int]]:
    """The unread offset ranges of ``topic`` per partition (see :func:`lag_ranges`).

    Asks the broker for the partitions and their end offsets (raises
    :class:`~confluent_kafka.KafkaException` when it cannot) and reads the stored offsets
    from the lake; writes nothing anywhere.
    """
    consumer = Consumer(
        settings.client_config(**{"group.id": group_id, "socket.connection.setup.timeout.ms": 3000})
    )
    try:
        partitions = topic_partitions(consumer, topic, timeout)
        ends = end_offsets(consumer, topic, partitions, timeout)
    finally:
        consumer.close()
    return lag_ranges(ends, stored_offsets(layout, contract, topic, partitions))
