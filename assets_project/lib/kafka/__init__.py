"""Kafka topic into the raw and dead-letter Delta tables, exactly once, even under kill -9.

* :mod:`~assets_project.lib.kafka.settings`: how to reach the cluster, consumer tuning;
* :mod:`~assets_project.lib.kafka.offsets`: offsets stored in the lake, end offsets, the lag;
* :mod:`~assets_project.lib.kafka.ingestor`: the bounded consumption into the lake;
* :mod:`~assets_project.lib.kafka.commit`: the Parquet files and the Delta commit of raw rows.
"""

from assets_project.lib.kafka.ingestor import (
    KAFKA_DLQ_SCHEMA,
    KEY_COLUMN,
    ConcurrentIngestionError,
    StreamIngestor,
    StreamResult,
)
from assets_project.lib.kafka.offsets import (
    StoredOffsets,
    end_offsets,
    lag_ranges,
    source_name,
    stored_offsets,
    topic_partitions,
    transaction_app_id,
    unread_ranges,
)
from assets_project.lib.kafka.settings import CONSUMER_DEFAULTS, KafkaSettings

__all__ = [
    "CONSUMER_DEFAULTS",
    "KAFKA_DLQ_SCHEMA",
    "KEY_COLUMN",
    "ConcurrentIngestionError",
    "KafkaSettings",
    "StoredOffsets",
    "StreamIngestor",
    "StreamResult",
    "end_offsets",
    "lag_ranges",
    "source_name",
    "stored_offsets",
    "topic_partitions",
    "transaction_app_id",
    "unread_ranges",
]
