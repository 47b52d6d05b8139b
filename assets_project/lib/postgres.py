"""Incremental extraction of an operational PostgreSQL table into its raw Delta table.

Each run reads, in one REPEATABLE READ snapshot, the rows whose update time is at or after
``watermark - overlap`` and at or before the snapshot's newest update time, streams them with
``COPY (SELECT …) TO STDOUT`` through the contract's validator, and merges the valid rows into
the raw table by primary key, keeping the newest version. The overlap re-reads rows that long
transactions committed late with an older update time; the merge makes that re-read harmless.
Rows stamped outside the range the lake supports (PostgreSQL's ``infinity``, BC, years after
9999) are read too and become dead letters; the watermark is the newest update time in range.

The new watermark travels in the same Delta commit as the rows, as the version of a Delta app
transaction (microseconds since the epoch), so data and watermark are committed atomically.
Rejected rows are merged into the dead-letter table (a row version already there is not added
again) with the same app transaction. A run that died between the two commits leaves the
dead-letter watermark behind the raw one; the next run then reads from the older of the two,
so no rejected row is ever skipped.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from psycopg import sql
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from assets_project.lib.batches import (
    LoadCounts,
    Plan,
    extraction_time,
    source_error_as_itself,
    valid_batches,
)
from assets_project.lib.contracts import Contract
from assets_project.lib.deadletter import RejectSpool, sorted_reasons
from assets_project.lib.delta_files import TableFiles, merge_newest, remove_where
from assets_project.lib.failpoints import failpoint
from assets_project.lib.lake import (
    LakeLayout,
    delta_table,
    ensure_source_tables,
    open_table,
    raw_schema,
)
from assets_project.lib.merging import NewestPerKey
from assets_project.lib.readers import open_csv_stream
from assets_project.lib.redact import redacts_errors
from assets_project.lib.validation import quote_ident

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)
# SQLSTATE classes worth another attempt: connection exceptions, transaction rollbacks
# (serialization failure, deadlock), insufficient resources, operator intervention.
_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_URI_HINT = (
    "in a postgresql:// URI, percent-encode special characters of the user and password "
    "(% as %25, @ as %40, / as %2F, # as %23, ? as %3F, : as %3A, a space as %20), or use "
    "the key=value form with the password in single quotes"
)
# Connection failures carry no SQLSTATE; these messages will not heal on a retry.
_PERMANENT_CONNECT_MESSAGES = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "invalid dsn",
    "invalid connection option",
    "invalid sslmode",
    "permission denied",
)
CONFLICT_ATTEMPTS = 4
"""Extractions tried while their commits lose races to concurrent writers of the table."""

Mode = Literal["full", "merge"]


class PermanentSourceError(Exception):
    """The database refused in a way that retrying cannot fix (credentials, missing table)."""


def connect_error(app_id: str, exc: Exception) -> PermanentSourceError:
    """The error for a connection that cannot be made for good (its message is redacted by
    the caller's boundary, see :func:`assets_project.lib.redact.redacts_errors`)."""
    if isinstance(exc, psycopg.ProgrammingError | ValueError):
        # libpq could not parse the connection string: it quotes the piece it choked on.
        text = str(exc).strip() or type(exc).__name__
        return PermanentSourceError(
            f"{app_id}: DATABASE_URL is not a valid connection string: {text}; {_URI_HINT}"
        )
    return PermanentSourceError(f"{app_id}: cannot connect: {str(exc).strip()}")


def is_transient(exc: BaseException) -> bool:
    """Whether a PostgreSQL error may heal on a retry (connection lost, serialization failure)."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state:
        return state[:2] in _TRANSIENT_CLASSES
    if isinstance(exc, psycopg.OperationalError):
        message = str(exc).lower()
        return not any(text in message for text in _PERMANENT_CONNECT_MESSAGES)
    return False


def source_label(contract: Contract) -> str:
    """``_source`` of extracted rows, and the Delta app transaction id of the watermark."""
    assert contract.postgres is not None
    return f"postgres:{contract.postgres.schema_name}.{contract.postgres.table}"


def watermark_version(value: datetime) -> int:
    """A watermark as a Delta app transaction version: microseconds since the epoch (UTC)."""
    return (_naive_utc(value) - _EPOCH) // timedelta(microseconds=1)


def watermark_from_version(version: int | None) -> datetime | None:
    """The watermark stored as app transaction ``version`` (naive UTC)."""
    return None if version is None else _EPOCH + timedelta(microseconds=version)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class Watermarks:
    """The newest update time committed to the raw and to the dead-letter table."""

    raw: datetime | None
    dead_letter: datetime | None


def read_watermarks(layout: LakeLayout, contract: Contract) -> Watermarks:
    """The watermarks stored in the Delta logs of ``contract``'s tables (None: never loaded)."""
    app_id = source_label(contract)
    raw = open_table(layout.raw_uri(contract.name))
    dlq = open_table(layout.dlq_uri(contract.name))
    return Watermarks(
        raw=watermark_from_version(raw.transaction_version(app_id) if raw else None),
        dead_letter=watermark_from_version(dlq.transaction_version(app_id) if dlq else None),
    )


@dataclass(kw_only=True)
class ExtractResult(LoadCounts):
    """What one extraction read and wrote."""

    mode: Mode
    since: datetime | None
    previous_watermark: datetime | None
    watermark: datetime | None = None
    rows_unchanged: int = 0
    rejects_already_in_dead_letter: int = 0
    deduplicated: bool = False
    """Whether the rows were reduced to one per key (the source does not enforce the key)."""

    @property
    def rows_already_in_lake(self) -> int:
        """Rows read again (overlap) that the lake already held in the same version."""
        return self.rows_unchanged + self.rejects_already_in_dead_letter


@redacts_errors("url")
def connect(url: str, *, connect_timeout: int = 10) -> psycopg.Connection:
    """A connection in UTC whose text output is what the validator parses.

    No error raised here carries the password or the connection string."""
    connection = psycopg.connect(url, connect_timeout=connect_timeout, autocommit=False)
    connection.execute("SET TIME ZONE 'UTC'")
    connection.execute("SET DateStyle = 'ISO, YMD'")
    connection.execute("SET IntervalStyle = 'iso_8601'")
    connection.commit()
    return connection


def _table(contract: Contract) -> sql.Composable:
    assert contract.postgres is not None
    return sql.Identifier(contract.postgres.schema_name, contract.postgres.table)


def _range_filter(contract: Contract, since: datetime | None) -> tuple[sql.Composable, list]:
    column = sql.Identifier(contract.update_time or "")
    if since is None:
        return sql.SQL("{} IS NOT NULL").format(column), []
    return sql.SQL("{} >= %s").format(column), [since]


def _supported(contract: Contract) -> sql.Composed:
    """True when the update time is inside the range the lake supports (0001..9999, UTC).

    PostgreSQL also has ``infinity``, BC dates and years up to 294276: rows stamped so are
    extracted (the validator sends them to the dead-letter table), but never set the watermark.
    The session runs in UTC, so the bounds are UTC for a timestamptz column too.
    """
    return sql.SQL(
        "{column} BETWEEN '0001-01-01 00:00:00' AND '9999-12-31 23:59:59.999999'"
    ).format(column=sql.Identifier(contract.update_time or ""))


def snapshot_query(contract: Contract, since: datetime | None) -> tuple[sql.Composed, list]:
    """count(*) of the rows to extract, and their newest update time in the supported range."""
    where, params = _range_filter(contract, since)
    query = sql.SQL(
        "SELECT count(*), max({column}) FILTER (WHERE {supported}) FROM {table} WHERE {where}"
    ).format(
        column=sql.Identifier(contract.update_time or ""),
        supported=_supported(contract),
        table=_table(contract),
        where=where,
    )
    return query, params


def key_enforced(connection: psycopg.Connection, contract: Contract) -> bool:
    """Whether PostgreSQL guarantees one row per primary key value of the source table.

    True when a valid unique index without a predicate or expressions covers only columns of
    the contract's primary key, all of them ``NOT NULL`` (a unique index lets NULLs repeat).
    Then one snapshot cannot hold a key twice and the extracted rows need no reduction to one
    per key. A view, or a replica without its constraints, gets False.
    """
    assert contract.postgres is not None
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s "
        "AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey[0:i.indnkeyatts - 1]) AS k(attnum) "
        "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE a.attname IS NULL OR NOT a.attnotnull OR NOT (a.attname = ANY(%s))))"
    )
    params = [contract.postgres.schema_name, contract.postgres.table, list(contract.primary_key)]
    row = connection.execute(query, params).fetchone()
    return bool(row and row[0])


def copy_query(
    contract: Contract, since: datetime | None, until: datetime | None
) -> tuple[sql.Composed, list]:
    """``COPY (SELECT <contract columns> …) TO STDOUT`` for the rows in [since, until].

    Rows whose update time is outside the supported range (``infinity``, BC, after 9999) are
    read as well, whatever ``until`` is: they go to the dead-letter table with a reason.
    """
    where, params = _range_filter(contract, since)
    query = sql.SQL(
        "COPY (SELECT {columns} FROM {table} WHERE {where} "
        "AND ({column} <= %s OR NOT ({supported}))) TO STDOUT WITH (FORMAT csv)"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(c.name) for c in contract.columns),
        table=_table(contract),
        where=where,
        column=sql.Identifier(contract.update_time or ""),
        supported=_supported(contract),
    )
    return query, [*params, until]


class CopyStream(io.RawIOBase):
    """The bytes of a ``COPY … TO STDOUT`` as a readable stream; remembers a database error."""

    def __init__(self, copy: psycopg.Copy):
        self._chunks = iter(copy)
        self._pending = memoryview(b"")
        self.error: psycopg.Error | None = None
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except psycopg.Error as exc:
                self.error = exc
                raise
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes += n
        return n


def _merge_predicate(contract: Contract) -> str:
    return " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in contract.primary_key)


def _commit(app_id: str, watermark: datetime, **metadata: str) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(app_id, watermark_version(watermark))],
        custom_metadata={"watermark": watermark.isoformat(), **metadata},
    )


def _stamp(table: DeltaTable, app_id: str, watermark: datetime, **metadata: str) -> None:
    """Record ``watermark`` with an empty commit when the write before it changed nothing."""
    table.update_incremental()
    if table.transaction_version(app_id) != watermark_version(watermark):
        write_deltalake(
            table,
            pa.schema(table.schema().to_arrow()).empty_table(),
            mode="append",
            commit_properties=_commit(app_id, watermark, **metadata),
        )


def _plan_run(
    watermarks: Watermarks,
    *,
    full_refresh: bool,
    rewind_to: datetime | None,
    overlap: timedelta,
) -> tuple[Mode, datetime | None]:
    if full_refresh or watermarks.raw is None:
        return "full", None
    if rewind_to is not None:
        return "merge", _naive_utc(rewind_to)
    if watermarks.dead_letter is None:
        return "merge", None  # the first load died before its dead-letter commit
    return "merge", min(watermarks.raw, watermarks.dead_letter) - overlap


@redacts_errors("url")
def extract_table(
    url: str,
    contract: Contract,
    layout: LakeLayout,
    *,
    batch_id: str,
    overlap: timedelta = timedelta(minutes=10),
    full_refresh: bool = False,
    rewind_to: datetime | None = None,
    connect_timeout: int = 10,
) -> ExtractResult:
    """Extract the rows changed since the stored watermark into the raw and dead-letter tables.

    ``full_refresh`` re-reads the whole table and replaces the rows this source wrote before;
    ``rewind_to`` re-reads from that update time and rewrites rows of the same version.
    Raises :class:`PermanentSourceError` when the database refuses for good, and
    :class:`psycopg.Error` for failures that may heal (see :func:`is_transient`). No error
    raised here carries the password or the connection string (nor does its chain).
    A commit that loses its race to a concurrent writer (a compaction, a restore, a replay)
    starts the extraction over: watermarks, snapshot and rows are read again and the merge is
    recomputed on the newest table, never retried blindly (at most :data:`CONFLICT_ATTEMPTS`).
    Each step boundary is a failpoint (``postgres.*`` in :mod:`assets_project.lib.failpoints`).
    """
    attempt = 1
    while True:
        try:
            return _extract_once(
                url,
                contract,
                layout,
                batch_id=batch_id,
                overlap=overlap,
                full_refresh=full_refresh,
                rewind_to=rewind_to,
                connect_timeout=connect_timeout,
            )
        except CommitFailedError as exc:
            if attempt >= CONFLICT_ATTEMPTS:
                raise
            logger.info("%s: lost a commit race (%s); extracting again", contract.name, exc)
            attempt += 1


def _extract_once(
    url: str,
    contract: Contract,
    layout: LakeLayout,
    *,
    batch_id: str,
    overlap: timedelta,
    full_refresh: bool,
    rewind_to: datetime | None,
    connect_timeout: int,
) -> ExtractResult:
    started = time.perf_counter()
    app_id = source_label(contract)
    ensure_source_tables(layout, contract)
    watermarks = read_watermarks(layout, contract)
    mode, since = _plan_run(
        watermarks, full_refresh=full_refresh, rewind_to=rewind_to, overlap=overlap
    )
    result = ExtractResult(mode=mode, since=since, previous_watermark=watermarks.raw)
    try:
        connection = connect(url, connect_timeout=connect_timeout)
    except (psycopg.Error, ValueError) as exc:
        if is_transient(exc):
            raise
        raise connect_error(app_id, exc) from exc
    # One snapshot for the count, the newest update time and the COPY.
    connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    connection.read_only = True
    with connection:
        try:
            query, params = snapshot_query(contract, since)
            expected, newest = connection.execute(query, params).fetchone() or (0, None)
            result.deduplicated = not key_enforced(connection, contract)
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            raise PermanentSourceError(f"{app_id}: {exc}") from exc
        failpoint("postgres.snapshot")
        if not expected:
            _sync_dead_letter(layout, contract, watermarks, app_id)
            result.watermark = watermarks.raw
            result.seconds = time.perf_counter() - started
            return result
        # Only rows out of the supported range (infinity, ...) leave the watermark where it is.
        watermark = max(
            _naive_utc(newest) if newest is not None else _EPOCH, watermarks.raw or _EPOCH
        )
        result.watermark = watermark
        query, params = copy_query(contract, since, newest)
        with connection.cursor().copy(query, params) as copy:
            stream = CopyStream(copy)
            _write(
                stream,
                contract,
                layout,
                result,
                batch_id,
                app_id,
                watermark,
                mode,
                rewind_to is not None,
            )
        if result.rows_in != expected:
            raise RuntimeError(
                f"{app_id}: COPY returned {result.rows_in} rows, the snapshot counted {expected}"
            )
    result.seconds = time.perf_counter() - started
    return result


def _sync_dead_letter(
    layout: LakeLayout, contract: Contract, watermarks: Watermarks, app_id: str
) -> None:
    """Bring the dead-letter watermark up to the raw one when a run died between them."""
    if watermarks.raw is not None and watermarks.dead_letter != watermarks.raw:
        _stamp(delta_table(layout.dlq_uri(contract.name)), app_id, watermarks.raw)


def _write(
    stream: CopyStream,
    contract: Contract,
    layout: LakeLayout,
    result: ExtractResult,
    batch_id: str,
    app_id: str,
    watermark: datetime,
    mode: Mode,
    rewind: bool,
) -> None:
    columns = tuple(c.name for c in contract.columns)
    opened = open_csv_stream(io.BufferedReader(stream, buffer_size=1 << 20), columns, name=app_id)
    schema = raw_schema(contract)
    plan = Plan(opened=opened, schema=schema, new_columns=())
    extracted_at = extraction_time()
    spool = RejectSpool(layout.spool_dir, app_id, batch_id, extracted_at, contract.version)
    counts = LoadCounts()
    try:
        batches = valid_batches(plan, contract, spool, counts, app_id, batch_id, extracted_at)
        # One row per key, the newest version: a key twice in the batch never lands twice.
        newest = NewestPerKey(
            pa.RecordBatchReader.from_batches(schema, _checked(batches, stream)),
            contract.primary_key,
            contract.update_time,
            unique=not result.deduplicated,
        )
        reader = newest.reader()
        metadata = {"batch_id": batch_id, "mode": mode}
        raw = delta_table(layout.raw_uri(contract.name))
        stored = raw.transaction_version(app_id)

        def latest() -> None:
            """Move to the table's newest version; another extraction must not have committed."""
            raw.update_incremental()
            if raw.transaction_version(app_id) != stored:
                raise CommitFailedError(f"{app_id}: another extraction committed meanwhile")

        files = TableFiles(raw)
        try:
            with source_error_as_itself(stream):
                if mode == "full":
                    for batch in reader:
                        files.write(batch)
                    latest()
                    remove_where(files, "_source", app_id)
                    result.rows_written = newest.rows_out
                else:
                    merged = merge_newest(
                        files,
                        reader,
                        contract.primary_key,
                        contract.update_time or "",
                        # A rewind rewrites rows of the same version too; a normal run only
                        # newer ones.
                        or_same=rewind,
                        refresh=latest,
                    )
                    result.rows_written = merged.rows_written
                    result.rows_unchanged = counts.rows_written - merged.rows_written
            failpoint("postgres.rows_written")  # the files are written, not committed
            # One commit: the rows, the files they replace, and the watermark.
            files.commit(_commit(app_id, watermark, **metadata))
        except BaseException:
            files.abort()
            raise
        result.rows_in = counts.rows_in
        failpoint("postgres.raw_committed")
        rejects = spool.finish()
        result.rows_rejected = spool.rows
        result.reject_reasons = sorted_reasons(spool.reasons)
        dlq = delta_table(layout.dlq_uri(contract.name))
        if rejects.num_rows:
            stats = (
                dlq.merge(
                    rejects,
                    predicate="t._source = s._source AND t.record = s.record",
                    source_alias="s",
                    target_alias="t",
                    commit_properties=_commit(app_id, watermark, **metadata),
                )
                .when_not_matched_insert_all()
                .execute()
            )
            result.rejects_already_in_dead_letter = (
                rejects.num_rows - stats["num_target_rows_inserted"]
            )
        _stamp(dlq, app_id, watermark, **metadata)
        failpoint("postgres.dead_letter_committed")
    finally:
        spool.discard()


def _checked(batches: Iterator[pa.RecordBatch], stream: CopyStream) -> Iterator[pa.RecordBatch]:
    """The batches; a database error inside the CSV reader surfaces as itself."""
    with source_error_as_itself(stream):
        yield from batches


def retrying(attempts: int = 4, max_wait: float = 30.0) -> Retrying:
    """Retries for transient database errors: exponential backoff with jitter."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(initial=1, max=max_wait),
        stop=stop_after_attempt(attempts),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
