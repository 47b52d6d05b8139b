"""Ingest one dropped file into its raw Delta table and dead-letter table, exactly once.

The file is streamed batch by batch: each batch is validated against the contract in DuckDB,
valid rows flow straight into one Delta commit on the raw table, rejected rows are spooled to a
local Parquet file and then committed to the dead-letter table. Each commit carries a Delta
app transaction named after the file's SHA-256, so a file whose content was ingested before is
never appended again, even if it is dropped again or a run is retried after a crash between the
two commits: each table is written at most once per content.

A file that changes while it is read (a writer that paused longer than the settle time and
resumed) is caught before either commit: its size, modification time and SHA-256 are taken
before reading and compared again when the last batch has been read, inside the stream that
the raw commit consumes, so a difference aborts the Delta write and :class:`FileChangedError`
leaves both tables as they were. The price is a second sequential read of the file (for the
hash); the size and time alone would miss a same-length rewrite within one timestamp tick.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from assets_project.lib.batches import (
    LoadCounts,
    Plan,
    extraction_time,
    source_error_as_itself,
    valid_batches,
)
from assets_project.lib.contracts import IDENTIFIER, Contract
from assets_project.lib.deadletter import RejectSpool, sorted_reasons
from assets_project.lib.failpoints import failpoint
from assets_project.lib.lake import (
    DLQ_SCHEMA,
    PARTITION_COLUMN,
    LakeLayout,
    ensure_table,
    raw_schema,
)
from assets_project.lib.readers import UnreadableFileError, open_file

_HASH_CHUNK = 8 << 20
INGEST_ATTEMPTS = 3
"""Tries of one file when a commit fails: a concurrent ingest of the same content won the race
(same app transaction), or delta-rs used up its own commit retries under many writers."""
INGEST_RETRY_SECONDS = 0.5
"""Base of the jittered exponential backoff between those tries (so racing losers spread out)."""


class FileChangedError(Exception):
    """The file changed while it was read; nothing was committed for it."""


@dataclass(frozen=True)
class FileIdentity:
    """What a file was when reading began: size, modification time and content hash."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """Stat, then hash: a write during the hash shows as a changed time or size later."""
        stat = path.stat()
        return cls(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=file_sha256(path))

    def check(self, path: Path) -> None:
        """Raise :class:`FileChangedError` unless ``path`` is still this file."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise FileChangedError("the file disappeared while it was read") from None
        if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
            raise FileChangedError(
                f"the file changed while it was read (size {self.size} -> {stat.st_size}, "
                f"modified {(stat.st_mtime_ns - self.mtime_ns) / 1e9:+.3f}s)"
            )
        if file_sha256(path) != self.sha256:
            raise FileChangedError("the file's content changed while it was read (same size)")


@dataclass(kw_only=True)
class IngestResult(LoadCounts):
    """What happened to one file."""

    source_file: str
    sha256: str
    bytes: int
    already_ingested: bool = False
    mtime_ns: int | None = None
    """The file's modification time when it was read (with ``bytes``: what was committed)."""
    new_columns: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def transaction_id(sha256: str) -> str:
    """The Delta app transaction id that marks a file's content as ingested."""
    return f"file-{sha256}"


def is_ingested(table: DeltaTable, app_id: str) -> bool:
    """Whether ``table`` holds the content marked by ``app_id``.

    Version 0 means "not (any more)": a restore to a version before the file rewinds it so
    (see :mod:`assets_project.lib.timetravel`).
    """
    return (table.transaction_version(app_id) or 0) > 0


def missing_required(contract: Contract, columns: tuple[str, ...]) -> list[str]:
    """Required contract columns that a tabular file's header lacks."""
    return [name for name in contract.required_input_columns if name not in columns]


# Parquet physical types that can hold a contract type's values (text always can: its values
# are then validated one by one like a CSV's).
_COMPATIBLE: dict[str, Callable[[pa.DataType], bool]] = {
    "bigint": pa.types.is_integer,
    "integer": pa.types.is_integer,
    "double": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t),
    "decimal": lambda t: (
        pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
    ),
    "boolean": pa.types.is_boolean,
    "date": lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t),
    "timestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def incompatible_parquet_types(contract: Contract, path: Path) -> list[str]:
    """Contract columns whose Parquet type cannot hold the contract type, described."""
    schema = pq.read_schema(path)
    problems = []
    for column in contract.input_columns:
        if column.name not in schema.names:
            continue
        physical = schema.field(column.name).type
        if pa.types.is_string(physical) or pa.types.is_large_string(physical):
            continue
        family = "decimal" if column.type.startswith("decimal") else column.type
        accepts = _COMPATIBLE.get(family)
        if accepts is None or not accepts(physical):
            problems.append(
                f"{column.name} is {physical} in the file, the contract says {column.type}"
            )
    return problems


def _plan(path: Path, contract: Contract, table_schema: pa.Schema) -> Plan:
    """Open the file and decide its raw schema; raise UnreadableFileError if it cannot fit."""
    opened = open_file(path)
    base = raw_schema(contract)
    if opened.format == "jsonl":
        return Plan(opened=opened, schema=base, new_columns=())
    missing = missing_required(contract, opened.columns)
    if missing:
        raise UnreadableFileError(
            f"required column(s) missing from the header: {', '.join(missing)} "
            f"(header: {', '.join(opened.columns)})"
        )
    if opened.format == "parquet":
        problems = incompatible_parquet_types(contract, path)
        if problems:
            raise UnreadableFileError("column type changed: " + "; ".join(problems))
    known = {c.name for c in contract.columns}
    new_columns = tuple(
        name
        for name in opened.columns
        if name not in known and IDENTIFIER.match(name) and name not in base.names
    )
    schema = base
    for name in new_columns:
        existing = table_schema.field(name).type if name in table_schema.names else pa.string()
        if existing != pa.string():
            raise UnreadableFileError(f"column {name} is {existing} in the raw table, text here")
        schema = schema.insert(len(contract.columns), pa.field(name, pa.string()))
    return Plan(opened=opened, schema=schema, new_columns=new_columns)


class _Watched:
    """The valid batches, then a check that the file is unchanged, before anything commits.

    Remembers a reader error or a change that a Delta writer would wrap, to raise it as itself.
    """

    def __init__(
        self,
        batches: Iterator[pa.RecordBatch],
        path: Path,
        identity: FileIdentity,
        source_check: Callable[[], None] | None = None,
    ):
        self._batches = batches
        self._path = path
        self._identity = identity
        self._source_check = source_check
        self.error: UnreadableFileError | FileChangedError | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches
            # The last batch is read: the raw commit has not happened yet (write_deltalake
            # commits only after its stream ends), nor has the dead-letter commit.
            self._identity.check(self._path)
            failpoint("file.rows_written")
            if self._source_check is not None:
                self._source_check()
        except UnreadableFileError as exc:
            # A reader error in a file that changed meanwhile is the change, not the file.
            changed = _changed_instead(self._path, self._identity)
            if changed is None:
                self.error = exc
                raise
            self.error = changed
            raise changed from exc
        except FileChangedError as exc:
            self.error = exc
            raise

    def write_raw(self, table: DeltaTable, schema: pa.Schema, **kwargs: Any) -> None:
        """Append the batches in one commit; a reader error surfaces as itself."""
        with source_error_as_itself(self):
            write_deltalake(table, pa.RecordBatchReader.from_batches(schema, iter(self)), **kwargs)


def _changed_instead(path: Path, identity: FileIdentity) -> FileChangedError | None:
    """The change, if ``path`` is no longer the file ``identity`` describes."""
    try:
        identity.check(path)
    except FileChangedError as exc:
        return exc
    return None


def ingest_file(
    path: Path,
    contract: Contract,
    layout: LakeLayout,
    *,
    source: str,
    batch_id: str | None = None,
    source_check: Callable[[], None] | None = None,
) -> IngestResult:
    """Validate ``path`` against ``contract`` and commit it to the raw and dead-letter tables.

    ``source`` is the file's name as recorded in ``_source`` (e.g. ``users/users_0001.csv``).
    ``source_check``, when ``path`` is a local copy of the real source (an S3 object fetched
    into the spool), is called where the file's identity is checked, last right before the raw
    commit; it raises :class:`FileChangedError` when the source is no longer what was copied.
    Raises :class:`~assets_project.lib.readers.UnreadableFileError` when the file as a whole
    cannot be taken (unreadable, or a required column missing), and :class:`FileChangedError`
    when it changed while it was read; nothing is committed then.

    Processes ingesting different files into one table at once: delta-rs retries a commit that
    lost the race for the next version on top of the winner (appends under different app
    transactions do not conflict) and records it in the commit's ``num_retries``. Two processes
    ingesting the same content at once: Delta's conflict checker fails the second commit of the
    same app transaction; the loser (as any writer whose commit still fails) backs off and starts
    over on the newest tables, where it finds the content ingested (never a blind retry of its
    commit).
    """
    attempt = 1
    while True:
        try:
            return _ingest_once(
                path,
                contract,
                layout,
                source=source,
                batch_id=batch_id,
                source_check=source_check,
            )
        except CommitFailedError:
            if attempt >= INGEST_ATTEMPTS:
                raise
            time.sleep(INGEST_RETRY_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random()))
            attempt += 1


def _ingest_once(
    path: Path,
    contract: Contract,
    layout: LakeLayout,
    *,
    source: str,
    batch_id: str | None,
    source_check: Callable[[], None] | None = None,
) -> IngestResult:
    started = time.perf_counter()
    batch_id = batch_id or uuid.uuid4().hex
    identity = FileIdentity.of(path)
    sha = identity.sha256
    result = IngestResult(
        source_file=source, sha256=sha, bytes=identity.size, mtime_ns=identity.mtime_ns
    )
    app_id = transaction_id(sha)
    raw = ensure_table(layout.raw_uri(contract.name), raw_schema(contract), [PARTITION_COLUMN])
    dlq = ensure_table(layout.dlq_uri(contract.name), DLQ_SCHEMA)
    raw_done = is_ingested(raw, app_id)
    dlq_done = is_ingested(dlq, app_id)
    if raw_done and dlq_done:
        identity.check(path)  # the content the lake holds is the whole file, not a prefix
        if source_check is not None:
            source_check()
        result.already_ingested = True
        result.seconds = time.perf_counter() - started
        return result

    table_schema = pa.schema(raw.schema().to_arrow())
    try:
        plan = _plan(path, contract, table_schema)
    except UnreadableFileError as exc:
        changed = _changed_instead(path, identity)
        if changed is None:
            raise
        raise changed from exc
    result.new_columns = tuple(c for c in plan.new_columns if c not in table_schema.names)
    result.ignored_columns = tuple(
        c
        for c in plan.opened.columns
        if c not in plan.schema.names and c not in {x.name for x in contract.columns}
    )

    extracted_at = extraction_time()
    spool = RejectSpool(layout.spool_dir, source, batch_id, extracted_at, contract.version)
    metadata = {"source_file": source, "sha256": sha, "batch_id": batch_id}
    try:
        batches = _Watched(
            valid_batches(plan, contract, spool, result, source, batch_id, extracted_at),
            path,
            identity,
            source_check,
        )
        if raw_done:
            for _ in batches:  # only the rejects are still to be committed
                pass
        else:
            batches.write_raw(
                raw,
                plan.schema,
                mode="append",
                partition_by=[PARTITION_COLUMN],
                schema_mode="merge",
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(app_id, 1)],
                    custom_metadata=metadata,
                ),
            )
            failpoint("file.raw_committed")
        rejects = spool.finish()
        if not dlq_done:
            write_deltalake(
                dlq,
                rejects,
                mode="append",
                # A Kafka-fed source's dead-letter table has an extra message_key column.
                schema_mode="merge",
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(app_id, 1)],
                    custom_metadata={**metadata, "rows": str(rejects.num_rows)},
                ),
            )
            failpoint("file.dead_letter_committed")
    finally:
        spool.discard()
    result.rows_rejected = spool.rows
    result.reject_reasons = sorted_reasons(spool.reasons)
    result.seconds = time.perf_counter() - started
    return result
