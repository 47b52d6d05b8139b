"""Kafka ingestion: the raw asset of every source with a Kafka channel, and its lag sensor.

``raw/<source>`` reads a bounded batch from the contract's topic into ``lake/raw/<source>``
(and ``lake/dlq/<source>``) exactly once: the consumed offsets are stored in the same Delta
commits as the rows (see :mod:`assets_project.lib.kafka`). The same asset also takes the
source's file drops: the file sensor names a file in the run config, and then the file is
ingested as by a file-only source. Both channels append to the one raw table, told apart by
``_source`` (``kafka:<topic>/<partition>`` or the file's name).

``<source>_kafka_sensor`` compares the topic's end offsets with the offsets stored in Delta and
requests a run when messages wait, with a run key made of the offset ranges, so one range is
never requested twice.
"""

import json
import time
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
from confluent_kafka import KafkaException

from assets_project.defs.ingestion.raw import (
    INGESTION_RUN_EXECUTION,
    FileDropConfig,
    lake_table_metadata,
    materialize_raw,
    raw_asset,
)
from assets_project.defs.metadata import Metadata
from assets_project.defs.resources import KafkaResource, LakeResource
from assets_project.defs.sources import contracts_with, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.kafka import StreamIngestor, unread_ranges
from assets_project.lib.redact import redacting_errors

NOT_CONFIGURED = "KAFKA_BOOTSTRAP_SERVERS is not set: the Kafka channel is idle"
SENSOR_TIMEOUT_SECONDS = 5.0


class StreamConfig(FileDropConfig):
    """A file drop to ingest (``path``), or a bounded batch of the topic."""

    channel: Literal["auto", "kafka", "files"] = "auto"
    """``auto``: the dropped file in ``path`` if given, else the topic if
    KAFKA_BOOTSTRAP_SERVERS is set, else every ready file drop."""
    max_messages: int = 1_000_000
    """Stop after this many messages."""
    max_seconds: float = 300.0
    """Stop after this many seconds of consuming."""
    chunk_messages: int = 200_000
    """Messages per Delta commit pair (dead-letter, then raw)."""
    replay_from_offset: int | None = None
    """Re-read every partition from this offset (rows already in the lake are appended again;
    staging deduplicates them by key)."""
    replay_from_timestamp: str | None = None
    """Re-read every partition from the first message at or after this ISO 8601 time (UTC if
    no zone is given)."""


def _timestamp_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise dg.Failure(
            f"replay_from_timestamp {text!r} is not an ISO 8601 time", allow_retries=False
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def ingest_topic(
    context: dg.AssetExecutionContext,
    config: StreamConfig,
    lake: LakeResource,
    kafka: KafkaResource,
    contract: Contract,
) -> Metadata:
    """Consume one bounded batch of ``contract``'s topic; returns the materialization metadata."""
    assert contract.kafka is not None
    if not kafka.configured:
        raise dg.Failure(
            f"{NOT_CONFIGURED}; set it to read {contract.kafka.topic!r}", allow_retries=False
        )
    if config.replay_from_offset is not None and config.replay_from_timestamp is not None:
        raise dg.Failure(
            "set replay_from_offset or replay_from_timestamp, not both", allow_retries=False
        )
    replay_ms = (
        _timestamp_ms(config.replay_from_timestamp)
        if config.replay_from_timestamp is not None
        else None
    )
    layout = lake.layout
    # No error leaving the consumer may carry the SASL password (Dagster stores failures).
    with redacting_errors(kafka.redactor):
        ingestor = StreamIngestor(
            kafka.settings,
            contract,
            layout,
            topic=contract.kafka.topic,
            batch_id=context.run.run_id,
            group_id=kafka.group_id,
            timeout=kafka.timeout_seconds,
            chunk_messages=config.chunk_messages,
            logger=context.log,
        )
        result = ingestor.run(
            max_messages=config.max_messages,
            max_seconds=config.max_seconds,
            replay_from_offset=config.replay_from_offset,
            replay_from_timestamp_ms=replay_ms,
        )
    context.log.info(
        f"{result.topic}: {result.messages} messages in {result.chunks} chunk(s), "
        f"{result.rows_written} written, {result.rows_rejected} dead-lettered, "
        f"{result.skipped_already_stored} already stored; stopped: {result.stopped_by}"
    )
    return {
        "channel": "kafka",
        "topic": result.topic,
        "messages": result.messages,
        "rows_in": result.rows_in,
        "rows_written": result.rows_written,
        "rows_rejected": result.rows_rejected,
        "skipped_already_stored": result.skipped_already_stored,
        "offsets": dg.MetadataValue.json(
            {str(p): {"from": r[0], "next": r[1]} for p, r in sorted(result.ranges.items())}
        ),
        "replay": config.replay_from_offset is not None or replay_ms is not None,
        "caught_up": result.caught_up,
        "stopped_by": result.stopped_by,
        "duration_s": round(result.seconds, 3),
        "messages_per_s": round(result.messages / result.seconds) if result.seconds else 0,
        "reject_reasons": dg.MetadataValue.json(result.reject_reasons),
        **lake_table_metadata(lake, contract, context.run.run_id),
    }


def build_stream_asset(contract: Contract) -> dg.AssetsDefinition:
    """The raw asset of a source with a Kafka channel (and maybe a file channel)."""
    assert contract.kafka is not None
    topic = contract.kafka.topic
    channels = " and ".join(contract.channels)

    @raw_asset(
        contract,
        description=f"Raw Delta table `lake/raw/{contract.name}` (append-only, partitioned "
        f"by the {contract.partition_granularity} of `{contract.partition_by}`), fed by "
        f"{channels}: Kafka topic `{topic}` exactly once (offsets stored in the Delta commits); "
        f"rejected and unparseable records go to `lake/dlq/{contract.name}`.",
        kinds={"delta", "duckdb", "kafka"},
        channel="kafka",
        topic=topic,
        # One run at a time reads the topic: the table's pool has one slot (dagster.yaml); a
        # second one would only lose the commit race and retry.
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        config: StreamConfig,
        lake: LakeResource,
        kafka: KafkaResource,
    ) -> dg.MaterializeResult:
        return materialize_raw(
            context,
            config,
            lake,
            contract,
            requested=config.channel,
            service="kafka",
            configured=kafka.configured,
            read_service=lambda: ingest_topic(context, config, lake, kafka, contract),
        )

    return _raw_asset


def lag_ranges(
    lake: LakeResource, kafka: KafkaResource, contract: Contract
) -> dict[int, tuple[int, int]]:
    """Per partition with unread messages: (stored next offset, end offset). Reads only."""
    assert contract.kafka is not None
    return unread_ranges(
        kafka.settings,
        lake.layout,
        contract,
        contract.kafka.topic,
        group_id=kafka.group_id,
        timeout=SENSOR_TIMEOUT_SECONDS,
    )


def build_stream_sensor(contract: Contract) -> dg.SensorDefinition:
    """The sensor that requests a run of the raw asset when the topic has unread messages."""
    assert contract.kafka is not None
    key = raw_asset_key(contract.name)
    op_name = key.to_python_identifier()
    topic = contract.kafka.topic

    @dg.sensor(
        name=f"{contract.name}_kafka_sensor",
        description=f"Requests a run of raw/{contract.name} when Kafka topic {topic} has "
        "messages past the offsets stored in the Delta table (KafkaResource.min_lag messages, "
        "or any after max_wait_seconds).",
        target=[key],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lake: LakeResource, kafka: KafkaResource
    ) -> dg.SensorResult | dg.SkipReason:
        if not kafka.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        redact = kafka.redactor
        try:
            with redacting_errors(redact):
                ranges = lag_ranges(lake, kafka, contract)
        except KafkaException as exc:
            return dg.SkipReason(
                redact(f"Kafka at {kafka.bootstrap_servers} is not reachable: {exc}")
            )
        cursor = json.loads(context.cursor) if context.cursor else {}
        lag = sum(end - start for start, end in ranges.values())
        if lag == 0:
            return dg.SensorResult(
                skip_reason=f"{topic}: no unread messages", cursor=json.dumps({})
            )
        waiting_since = cursor.get("waiting_since") or time.time()
        waited = time.time() - waiting_since
        if lag < kafka.min_lag and waited < kafka.max_wait_seconds:
            return dg.SensorResult(
                skip_reason=f"{topic}: {lag} unread message(s), below min_lag {kafka.min_lag}; "
                f"waiting {waited:.0f} of {kafka.max_wait_seconds:g} s",
                cursor=json.dumps({"waiting_since": waiting_since}),
            )
        run_key = f"{topic}:" + ",".join(f"{p}:{s}-{e}" for p, (s, e) in sorted(ranges.items()))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key,
                    run_config=dg.RunConfig(
                        ops={op_name: StreamConfig(channel="kafka")},
                        execution=INGESTION_RUN_EXECUTION,
                    ),
                    tags={"kafka_topic": topic, "kafka_lag": str(lag)},
                )
            ],
            cursor=json.dumps({}),
        )

    return _sensor


KAFKA_CONTRACTS = contracts_with("kafka")
kafka_assets = [build_stream_asset(c) for c in KAFKA_CONTRACTS]
kafka_sensors = [build_stream_sensor(c) for c in KAFKA_CONTRACTS]
