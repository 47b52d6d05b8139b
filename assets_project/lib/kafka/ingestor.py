"""A Kafka topic into the raw and dead-letter Delta tables, exactly once, even under kill -9.

The consumed offsets live in the lake, not in Kafka: every Delta commit carries one app
transaction per topic-partition (``kafka:<topic>:<partition>``) whose version is the next
offset to read. A run reads them back with ``DeltaTable.transaction_version``, seeks there with
``Consumer.assign()`` (no group rebalancing) and consumes a bounded batch in chunks. Per chunk:

1. the messages are decoded and validated against the contract (one DuckDB query per chunk,
   the same one the JSON-lines file reader uses); messages that are not UTF-8 or have no value
   become dead letters with a reason, they never fail the run;
2. the dead-letter rows are committed first, carrying the chunk's next offsets;
3. the valid rows are written as Parquet files into the raw table's folder and committed with
   the same next offsets (``create_write_transaction``): files written but not committed are
   invisible to readers and never counted.

A run killed anywhere restarts from the smaller of the two tables' stored offsets and skips,
per table, the messages that table already holds, so each message lands in exactly one of the
two tables exactly once. Kafka's group offsets are committed afterwards only so that Kafka's
tools show the lag; nothing reads them back.

Replay (``replay_from_offset`` / ``replay_from_timestamp_ms``) re-reads from an earlier position
and appends again to both tables without skipping; the stored offsets never move backwards.
Replayed events keep their ``event_id``, which staging deduplicates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from assets_project.lib.batches import LoadCounts, extraction_time, with_lake_metadata
from assets_project.lib.contracts import Contract
from assets_project.lib.deadletter import Reason, dead_letter_rows, tally_reasons
from assets_project.lib.failpoints import failpoint
from assets_project.lib.kafka.commit import append_parquet
from assets_project.lib.kafka.offsets import (
    StoredOffsets,
    source_name,
    stored_offsets,
    topic_partitions,
    transaction_app_id,
)
from assets_project.lib.kafka.settings import CONSUMER_DEFAULTS, KafkaSettings
from assets_project.lib.lake import (
    DLQ_SCHEMA,
    LakeLayout,
    delta_table,
    ensure_source_tables,
    raw_schema,
)
from assets_project.lib.readers import int_range
from assets_project.lib.validation import (
    LINE_TEXT,
    ValidationQuery,
    compile_validation,
    new_connection,
    run_validation,
)

log = logging.getLogger(__name__)

#: The dead-letter table of a Kafka-fed source has this extra column (added by schema merge).
KEY_COLUMN = "message_key"
KAFKA_DLQ_SCHEMA = DLQ_SCHEMA.append(pa.field(KEY_COLUMN, pa.string()))
_CONSUME_BATCH = 10_000


class ConcurrentIngestionError(RuntimeError):
    """Another run committed the same partitions while this one was consuming them."""


@dataclass(kw_only=True)
class StreamResult(LoadCounts):
    """What one bounded consumption did (``rows_in``: messages this run wrote to the raw or
    the dead-letter table)."""

    topic: str
    messages: int = 0
    skipped_already_stored: int = 0
    chunks: int = 0
    ranges: dict[int, list[int]] = field(default_factory=dict)  # partition: [first, next]
    caught_up: bool = False
    stopped_by: str = ""


def _decode(values: list[bytes | None]) -> tuple[pa.Array, dict[int, str]]:
    """Values as an Arrow text array, plus the rows that are not text (index: reason).

    The fast path is one vectorized UTF-8 check; only a chunk that fails it is looked at
    message by message.
    """
    binary = pa.array(values, pa.binary())
    if binary.null_count == 0:
        try:
            return binary.cast(pa.string()), {}
        except pa.ArrowInvalid:
            pass
    bad: dict[int, str] = {}
    texts: list[str | None] = []
    for index, value in enumerate(values):
        if value is None:
            bad[index] = "message has no value (tombstone)"
            texts.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            bad[index] = (
                f"message is not valid UTF-8 (byte 0x{value[exc.start]:02X} at {exc.start})"
            )
            texts.append(None)
    return pa.array(texts, pa.string()), bad


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "backslashreplace")


@dataclass
class _Positions:
    """An offset per partition for each of the two tables."""

    raw: dict[int, int]
    dlq: dict[int, int]


def _or_none_yet(offset: int | None) -> int:
    """A stored next offset, or -1 for a partition a table holds nothing of."""
    return -1 if offset is None else offset


def _positions(messages: list[Message]) -> tuple[list[int], list[int]]:
    """Partition and offset of each consumed message (both set on a message without error)."""
    partitions: list[int] = []
    offsets: list[int] = []
    for message in messages:
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            raise KafkaException(f"a consumed message has no position: {message.error()}")
        partitions.append(partition)
        offsets.append(offset)
    return partitions, offsets


class _Chunk:
    """Messages of one chunk, in consumption order."""

    def __init__(self, messages: list[Message]):
        self.messages = messages
        partitions, offsets = _positions(messages)
        self.partition_of = partitions
        self.offset_of = offsets
        self.partitions = pa.array(partitions, pa.int32())
        self.offsets = pa.array(offsets, pa.int64())
        self.first: dict[int, int] = {}
        self.next: dict[int, int] = {}
        for partition, offset in zip(partitions, offsets, strict=True):
            self.first.setdefault(partition, offset)
            self.next[partition] = offset + 1

    def at_or_after(self, positions: dict[int, int]) -> pa.Array:
        """Per message: is its offset at or after ``positions`` of its partition?"""
        size = max(positions) + 1 if positions else 0
        lookup = pa.array([positions.get(p, -1) for p in range(size)], pa.int64())
        return pc.greater_equal(self.offsets, pc.take(lookup, self.partitions))


class StreamIngestor:
    """Consumes one topic of one contract into the lake; one instance per run."""

    def __init__(
        self,
        settings: KafkaSettings,
        contract: Contract,
        layout: LakeLayout,
        *,
        topic: str,
        batch_id: str,
        group_id: str,
        timeout: float = 10.0,
        chunk_messages: int = 200_000,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ):
        self.settings = settings
        self.contract = contract
        self.layout = layout
        self.topic = topic
        self.batch_id = batch_id
        self.group_id = group_id
        self.timeout = timeout
        self.chunk_messages = chunk_messages
        self.log = logger or log
        self._query: ValidationQuery = compile_validation(contract, jsonl=True)
        self._raw_uri = layout.raw_uri(contract.name)
        self._dlq_uri = layout.dlq_uri(contract.name)
        self._expected_next: dict[int, int | None] = {}

    # -- consumption ---------------------------------------------------------------------

    def run(
        self,
        *,
        max_messages: int,
        max_seconds: float,
        replay_from_offset: int | None = None,
        replay_from_timestamp_ms: int | None = None,
        idle_seconds: float = 2.0,
    ) -> StreamResult:
        """Consume up to ``max_messages`` or ``max_seconds``, or until every partition is at
        its end, committing each chunk to the lake; then commit the group offsets to Kafka."""
        started = time.perf_counter()
        result = StreamResult(topic=self.topic)
        consumer = Consumer(
            self.settings.client_config(**CONSUMER_DEFAULTS, **{"group.id": self.group_id})
        )
        try:
            partitions = topic_partitions(consumer, self.topic, self.timeout)
            # The tables this run commits to (a read of stored offsets never creates them).
            ensure_source_tables(self.layout, self.contract)
            stored = stored_offsets(self.layout, self.contract, self.topic, partitions)
            replaying = replay_from_offset is not None or replay_from_timestamp_ms is not None
            start = self._start_offsets(
                consumer, partitions, stored, replay_from_offset, replay_from_timestamp_ms
            )
            # Per table, the next offset it holds: below it a message is skipped (not when
            # replaying), and its stored offset never moves backwards.
            raw_at = {p: _or_none_yet(stored.raw[p]) for p in partitions}
            dlq_at = {p: _or_none_yet(stored.dlq[p]) for p in partitions}
            skip = _Positions(
                raw={p: -1 if replaying else o for p, o in raw_at.items()},
                dlq={p: -1 if replaying else o for p, o in dlq_at.items()},
            )
            floor = _Positions(raw=raw_at, dlq=dlq_at)
            self._expected_next = dict(start)
            consumer.assign(
                [
                    TopicPartition(self.topic, p, OFFSET_BEGINNING if o is None else o)
                    for p, o in start.items()
                ]
            )
            self.log.info(
                f"{self.topic}: reading partitions from "
                + ", ".join(f"{p}@{'beginning' if o is None else o}" for p, o in start.items())
                + (" (replay)" if replaying else "")
            )
            at_end: set[int] = set()
            last_message = time.monotonic()
            deadline = time.monotonic() + max_seconds
            buffer: list[Message] = []
            while True:
                remaining = max_messages - result.messages - len(buffer)
                if remaining <= 0:
                    result.stopped_by = "max_messages"
                    break
                if time.monotonic() >= deadline:
                    result.stopped_by = "max_seconds"
                    break
                if len(at_end) == len(partitions):
                    result.caught_up = True
                    result.stopped_by = "end of every partition"
                    break
                if time.monotonic() - last_message > idle_seconds:
                    result.stopped_by = f"nothing from the broker for {idle_seconds:g} s"
                    break
                batch = consumer.consume(
                    num_messages=min(_CONSUME_BATCH, remaining, self.chunk_messages - len(buffer)),
                    timeout=0.5,
                )
                for message in batch:
                    error = message.error()
                    partition = message.partition()
                    if error is None:
                        buffer.append(message)
                        if partition is not None:
                            at_end.discard(partition)
                    elif error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        at_end.add(partition)
                    elif error.fatal() or not error.retriable():
                        raise KafkaException(error)
                    else:
                        self.log.warning(f"{self.topic}: {error}")
                if batch:
                    last_message = time.monotonic()
                if len(buffer) >= self.chunk_messages:
                    self._commit_chunk(_Chunk(buffer), result, skip, floor)
                    buffer = []
            if buffer:
                self._commit_chunk(_Chunk(buffer), result, skip, floor)
            if result.chunks:
                # For Kafka's lag tools only: the lake's offsets are the ones that count.
                consumer.commit(
                    offsets=[
                        TopicPartition(self.topic, p, min(floor.raw[p], floor.dlq[p]))
                        for p in sorted(result.ranges)
                    ],
                    asynchronous=False,
                )
                failpoint("kafka.after_kafka_commit")
        finally:
            consumer.close()
        result.seconds = time.perf_counter() - started
        return result

    def _start_offsets(
        self,
        consumer: Consumer,
        partitions: list[int],
        stored: StoredOffsets,
        replay_from_offset: int | None,
        replay_from_timestamp_ms: int | None,
    ) -> dict[int, int | None]:
        if replay_from_timestamp_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(self.topic, p, replay_from_timestamp_ms) for p in partitions],
                timeout=self.timeout,
            )
            start: dict[int, int | None] = {}
            for tp in found:
                if tp.error is not None:
                    raise KafkaException(tp.error)
                # -1: no message at or after the timestamp; nothing to replay there.
                start[tp.partition] = (
                    tp.offset if tp.offset >= 0 else stored.resume_at(tp.partition)
                )
            return start
        if replay_from_offset is not None:
            return {p: replay_from_offset for p in partitions}
        return {p: stored.resume_at(p) for p in partitions}

    # -- one chunk -----------------------------------------------------------------------

    def _commit_chunk(
        self,
        chunk: _Chunk,
        result: StreamResult,
        skip: _Positions,
        floor: _Positions,
    ) -> None:
        failpoint("kafka.after_consume")
        for p, first in chunk.first.items():
            expected = self._expected_next.get(p)
            if expected is not None and first > expected:
                # Retention deleted them before they were read (or transaction markers).
                self.log.warning(
                    f"{self.topic}/{p}: offsets {expected}..{first - 1} are no longer in Kafka; "
                    "reading on from the earliest message left"
                )
            self._expected_next[p] = chunk.next[p]
        n = len(chunk.messages)
        values = [m.value() for m in chunk.messages]
        text, not_text = _decode(values)
        batch = pa.table(
            {"_source_line": int_range(0, n), LINE_TEXT: text}
        )  # _source_line: index in the chunk while validating
        connection = new_connection()
        try:
            valid, rejected = run_validation(connection, self._query, batch)
        finally:
            connection.close()
        if not_text:
            keep = pc.invert(pc.is_in(rejected["_source_line"], pa.array(list(not_text))))
            rejected = rejected.filter(keep)

        # Dead letters: validator rejects plus undecodable messages, minus already stored.
        indexes = rejected["_source_line"].to_pylist()
        records = rejected["_record"].to_pylist()
        reasons = rejected["_reasons"].to_pylist()
        for index, reason in not_text.items():
            indexes.append(index)
            records.append(_text(values[index]))
            reasons.append([{"column": None, "rule": reason, "value": None}])
        dlq_new = chunk.at_or_after(skip.dlq).to_pylist()
        dead = [
            (i, rec, rs) for i, rec, rs in zip(indexes, records, reasons, strict=True) if dlq_new[i]
        ]
        dead.sort(key=lambda item: item[0])
        tally_reasons(result.reject_reasons, [rs for _, _, rs in dead])

        extracted_at = extraction_time()
        write_deltalake(
            self._checked_table(self._dlq_uri, chunk, floor.dlq),
            self._dead_letter_table(chunk, dead, extracted_at),
            mode="append",
            schema_mode="merge",
            commit_properties=self._properties(chunk, floor.dlq),
        )
        failpoint("kafka.after_dlq_commit")

        # Valid rows, minus those the raw table already holds (after a crash between commits).
        positions = valid["_source_line"]
        new = pc.take(chunk.at_or_after(skip.raw), positions)
        skipped = valid.num_rows - pc.sum(new.cast(pa.int64())).as_py() if valid.num_rows else 0
        positions = positions.filter(new)
        valid = valid.filter(new)
        rows = self._raw_rows(
            valid,
            pc.take(chunk.partitions, positions),
            pc.take(chunk.offsets, positions),
            extracted_at,
        )
        append_parquet(
            self._checked_table(self._raw_uri, chunk, floor.raw),
            self._raw_uri,
            rows,
            self._properties(chunk, floor.raw),
        )
        failpoint("kafka.after_raw_commit")

        for p, o in chunk.next.items():
            for positions_of in (skip.raw, skip.dlq, floor.raw, floor.dlq):
                positions_of[p] = max(positions_of[p], o)
            result.ranges[p] = [result.ranges.get(p, [chunk.first[p]])[0], o]
        result.chunks += 1
        result.messages += n
        result.rows_written += rows.num_rows
        result.rows_rejected += len(dead)
        result.rows_in += rows.num_rows + len(dead)
        result.skipped_already_stored += skipped + (len(indexes) - len(dead))

    def _properties(self, chunk: _Chunk, stored: dict[int, int]) -> CommitProperties:
        """The chunk's next offsets as app transactions (never below what a table stores)."""
        return CommitProperties(
            app_transactions=[
                Transaction(transaction_app_id(self.topic, p), max(o, stored[p]))
                for p, o in chunk.next.items()
            ],
            custom_metadata={"batch_id": self.batch_id, "topic": self.topic},
        )

    def _dead_letter_table(
        self,
        chunk: _Chunk,
        dead: list[tuple[int, str | None, list[Reason]]],
        extracted_at: datetime,
    ) -> pa.Table:
        indexes = [i for i, _, _ in dead]
        return dead_letter_rows(
            source=[source_name(self.topic, chunk.partition_of[i]) for i in indexes],
            source_lines=[chunk.offset_of[i] for i in indexes],
            batch_id=self.batch_id,
            extracted_at=extracted_at,
            contract_version=self.contract.version,
            records=[rec for _, rec, _ in dead],
            reasons=[rs for _, _, rs in dead],
            schema=KAFKA_DLQ_SCHEMA,
            extra={
                KEY_COLUMN: pa.array([_text(chunk.messages[i].key()) for i in indexes], pa.string())
            },
        )

    def _raw_rows(
        self, valid: pa.Table, partitions: pa.Array, offsets: pa.Array, extracted_at: datetime
    ) -> pa.Table:
        size = (pc.max(partitions).as_py() or 0) + 1 if len(partitions) else 1
        names = pa.array([source_name(self.topic, p) for p in range(size)])
        return with_lake_metadata(
            valid,
            self.contract,
            raw_schema(self.contract),
            source=pc.take(names, partitions),
            batch_id=self.batch_id,
            extracted_at=extracted_at,
            source_lines=offsets,
        )

    def _checked_table(self, uri: str, chunk: _Chunk, stored: dict[int, int]) -> DeltaTable:
        """The table, checked to hold the offsets this run started from.

        The commit is made from this snapshot, so Delta's conflict check also refuses it when
        another run commits the same partitions' app transactions in the meantime.
        """
        table = delta_table(uri)
        for partition in chunk.next:
            found = table.transaction_version(transaction_app_id(self.topic, partition))
            expected = None if stored[partition] < 0 else stored[partition]
            if found != expected:
                raise ConcurrentIngestionError(
                    f"{uri}: {self.topic}/{partition} is at offset {found}, this run expected "
                    f"{expected}: another run ingested it meanwhile; retry to resume from there"
                )
        return table
