"""Look at and go back to earlier states of a Delta table: the ledger, history, as-of, restore.

Every Delta commit is a version. A version can be read back (``as_of``) as long as its log
entries are kept (``delta.logRetentionDuration``, 30 days by default) and the files it
references were not vacuumed (a removed file is kept for the vacuum retention, 7 days at
least, see :mod:`assets_project.lib.maintenance`).

The *ledger* is the set of Delta app transactions (``txn`` actions) that exactly-once
ingestion keeps in the tables: ``file-<sha256>`` (a dropped file's content was ingested, version
1), ``kafka:<topic>:<partition>`` (the next offset to read), ``postgres:…`` (the watermark in
microseconds) and ``replay:<source>``. A restore that took the rows back but left the ledger
ahead would make ingestion skip what the restore removed, so :func:`restore` rewinds the ledger
to the target version in the same commit: app ids unknown at the target get version 0, which
ingestion reads as "nothing ingested yet".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError

from assets_project.lib.lake import delta_table

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")


class RestoreConflictError(RuntimeError):
    """Every attempt of a restore lost its commit race to a concurrent writer."""


RESTORE_ATTEMPTS = 5
"""How many times a restore that lost its commit race is planned again on the newest table."""

AsOf = int | datetime
"""A version number, or a point in time (naive means UTC)."""


def parse_as_of(text: str) -> AsOf:
    """A version (``12``) or an ISO 8601 timestamp (``2026-12-01T08:00:00Z``; naive is UTC)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a version number nor an ISO timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def version_at(table: DeltaTable, moment: datetime) -> int:
    """The newest version of ``table`` committed at or before ``moment`` (naive means UTC).

    Decided by each commit's own timestamp (``commitInfo.timestamp``, milliseconds), not by the
    log entry's modification time as delta-rs does: an object store keeps that to the second
    only (S3's ``LastModified``), which would blur the commits made within one second.
    """
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    cutoff = aware.timestamp() * 1000
    found = [
        int(info["version"])
        for info in table.history()
        if "timestamp" in info and info["timestamp"] <= cutoff
    ]
    if not found:
        raise ValueError(f"{table.table_uri}: no version was committed at or before {aware}")
    return max(found)


def open_as_of(uri: str, as_of: AsOf | None = None) -> DeltaTable:
    """The table at ``uri`` as of a version or a time (the newest version when None)."""
    table = delta_table(uri)
    if isinstance(as_of, datetime):
        table.load_as_version(version_at(table, as_of))
    elif as_of is not None:
        table.load_as_version(as_of)
    return table


def log_files(table: DeltaTable) -> tuple[pafs.FileSystem, list[pafs.FileInfo]]:
    """The file system and the files of ``table``'s ``_delta_log``."""
    filesystem, root = pafs.FileSystem.from_uri(table.table_uri)
    folder = f"{root.rstrip('/')}/_delta_log"
    infos = filesystem.get_file_info(pafs.FileSelector(folder, recursive=False))
    return filesystem, infos


def _commit_actions(filesystem: pafs.FileSystem, path: str) -> Iterator[dict[str, Any]]:
    with filesystem.open_input_stream(path) as stream:
        text = stream.read().decode("utf-8")
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def app_transactions(table: DeltaTable) -> dict[str, int]:
    """Every app transaction of ``table``'s loaded version: app id -> version.

    delta-rs answers for one app id at a time (``transaction_version``); the whole set is read
    from the log: the newest checkpoint at or before the version, then the commits after it.
    """
    version = table.version()
    filesystem, infos = log_files(table)
    checkpoints: dict[int, list[str]] = {}
    commits: dict[int, str] = {}
    for info in infos:
        if match := _CHECKPOINT.match(info.base_name):
            checkpoints.setdefault(int(match.group(1)), []).append(info.path)
        elif match := _COMMIT.match(info.base_name):
            commits[int(match.group(1))] = info.path
    start = max((v for v in checkpoints if v <= version), default=-1)
    found: dict[str, int] = {}
    for path in checkpoints.get(start, []):
        txn = pq.read_table(path, columns=["txn"], filesystem=filesystem)["txn"]
        for entry in txn.to_pylist():
            if entry is not None:
                found[entry["appId"]] = entry["version"]
    for v in range(start + 1, version + 1):
        if v not in commits:
            raise FileNotFoundError(
                f"{table.table_uri}: the log entry of version {v} is gone (log retention)"
            )
        for action in _commit_actions(filesystem, commits[v]):
            if "txn" in action:
                found[action["txn"]["appId"]] = action["txn"]["version"]
    return found


@dataclass(frozen=True)
class Commit:
    """One version in a table's history."""

    version: int
    timestamp: datetime
    operation: str
    batch_id: str | None
    app_transactions: dict[str, int]
    """The ``txn`` actions of this commit (empty when its log entry was cleaned up)."""
    details: dict[str, Any]
    """The rest of the commit info: parameters, metrics, custom metadata."""


def history(table: DeltaTable, limit: int | None = None) -> list[Commit]:
    """The newest ``limit`` commits (all when None), newest first, with their app transactions."""
    filesystem, infos = log_files(table)
    commits = {int(m.group(1)): i.path for i in infos if (m := _COMMIT.match(i.base_name))}
    result = []
    for info in table.history(limit):
        version = int(info.pop("version"))
        txns: dict[str, int] = {}
        if version in commits:
            for action in _commit_actions(filesystem, commits[version]):
                if "txn" in action:
                    txns[action["txn"]["appId"]] = action["txn"]["version"]
        result.append(
            Commit(
                version=version,
                timestamp=datetime.fromtimestamp(info.pop("timestamp", 0) / 1000, UTC),
                operation=str(info.pop("operation", "?")),
                batch_id=info.get("batch_id"),
                app_transactions=txns,
                details={k: v for k, v in info.items() if k not in ("engineInfo", "clientVersion")},
            )
        )
    return result


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    restored_to: int
    previous_version: int
    version: int
    files_removed: int
    files_restored: int
    ledger_rewound: dict[str, int]
    """App ids whose version the restore set back (to their value at the target, or 0)."""


def ledger_rewind(current: dict[str, int], target: dict[str, int]) -> dict[str, int]:
    """The app transactions that take ledger ``current`` back to ledger ``target``."""
    return {app: target.get(app, 0) for app, v in current.items() if target.get(app, 0) != v}


def restore(
    uri: str, as_of: AsOf, *, batch_id: str | None = None, attempts: int = RESTORE_ATTEMPTS
) -> RestoreResult:
    """Restore the table at ``uri`` to a version or time, as one new commit (``RESTORE``).

    The same commit rewinds the ledger (see the module doc), so ingestion takes up again what
    the restore removed. A restore that loses its commit race to a concurrent writer is planned
    again on the newest table (never blindly retried).
    """
    target_table = open_as_of(uri, as_of)
    target_version = target_table.version()
    target_ledger = app_transactions(target_table)
    for attempt in range(1, attempts + 1):
        table = delta_table(uri)
        previous = table.version()
        if target_version > previous:
            raise ValueError(f"{uri}: version {target_version} is newer than {previous}")
        rewind = ledger_rewind(app_transactions(table), target_ledger)
        if target_version == previous:
            return RestoreResult(target_version, previous, previous, 0, 0, {})
        metadata = {"restored_to": str(target_version)}
        if batch_id:
            metadata["batch_id"] = batch_id
        try:
            metrics = table.restore(
                target_version,
                commit_properties=CommitProperties(
                    custom_metadata=metadata,
                    app_transactions=[Transaction(app, v) for app, v in sorted(rewind.items())],
                ),
            )
        except CommitFailedError as exc:
            log.info("restore of %s lost its commit race (%s), attempt %d", uri, exc, attempt)
            continue
        table.update_incremental()
        return RestoreResult(
            restored_to=target_version,
            previous_version=previous,
            version=table.version(),
            files_removed=int(metrics.get("numRemovedFile", 0)),
            files_restored=int(metrics.get("numRestoredFile", 0)),
            ledger_rewound=rewind,
        )
    raise RestoreConflictError(f"{uri}: the restore lost its commit race {attempts} times")


def read_as_of(uri: str, as_of: AsOf | None, columns: list[str] | None = None) -> pa.Table:
    """The rows of the table at ``uri`` as of a version or time (newest when None)."""
    return open_as_of(uri, as_of).to_pyarrow_table(columns=columns)
