"""Delta table maintenance: compaction, z-order, vacuum, checkpoint and log cleanup.

One call of :func:`maintain` on one table:

1. compacts small files per partition to the target file size (or z-orders on the columns the
   settings name, which compacts too); a compaction that loses its commit race to a concurrent
   writer is planned again on the newest table (never blindly retried);
2. vacuums files that no version within the retention references (a full vacuum: files a
   killed writer left behind, never committed, go too). The retention never goes below
   :data:`MIN_RETENTION` without ``allow_short_retention``: a reader holding an older snapshot,
   or a writer whose files are written but not yet committed, would lose its files;
3. writes a checkpoint and deletes log entries older than ``delta.logRetentionDuration``
   (30 days by default). The checkpoint carries every app transaction (``txn``), the
   exactly-once ledger of ingestion (see :mod:`assets_project.lib.timetravel`); nothing here
   expires one (``delta.setTransactionRetentionDuration`` is never set), and :func:`maintain`
   checks after the fact that every app transaction is still there.

Maintenance must not run at the same time as a writer of the same table: Dagster runs it in
the table's pool (see ``assets_project.defs.sources.table_pool``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError

from assets_project.lib.contracts import Contract
from assets_project.lib.lake import delta_table
from assets_project.lib.timetravel import app_transactions, log_files

log = logging.getLogger(__name__)

MIN_RETENTION = timedelta(days=7)
"""The shortest vacuum retention allowed without the explicit override."""
DEFAULT_TARGET_FILE_SIZE = 128 << 20
"""Bytes a compacted file aims at when the contract names no target."""
DEFAULT_SMALL_FILE_BYTES = 8 << 20
"""A file below this size counts as small for the small-files check."""
DEFAULT_MAX_SMALL_FILES = 50
"""The small-files check warns above this many compactable small files in one table."""
COMPACTION_ATTEMPTS = 5
"""How many times a compaction that lost its commit race is planned again."""


class RetentionTooShortError(ValueError):
    """A vacuum retention below :data:`MIN_RETENTION` was asked for without the override."""


class LedgerLostError(RuntimeError):
    """An app transaction that was there before maintenance is gone after it (never expected)."""


class CompactionConflictError(RuntimeError):
    """Every compaction attempt lost its commit race to a concurrent writer."""


def target_file_size(contract: Contract) -> int:
    """Bytes a compacted file of ``contract``'s tables aims at (custom property maintenance)."""
    return contract.maintenance.target_file_size or DEFAULT_TARGET_FILE_SIZE


def z_order_columns(contract: Contract) -> tuple[str, ...]:
    """Columns to z-order ``contract``'s raw table on (empty: plain compaction)."""
    return contract.maintenance.z_order_by


def check_retention(retention: timedelta, allow_short_retention: bool = False) -> None:
    """Refuse a retention below :data:`MIN_RETENTION` unless explicitly overridden."""
    if retention < timedelta(0):
        raise RetentionTooShortError(f"a retention cannot be negative ({retention})")
    if retention < MIN_RETENTION and not allow_short_retention:
        raise RetentionTooShortError(
            f"vacuum retention {retention} is below {MIN_RETENTION.days} days: readers of older "
            "snapshots and writers with uncommitted files would lose files. Pass the explicit "
            "override (allow_short_retention) only when no reader or writer is running."
        )


@dataclass(frozen=True)
class MaintenanceSettings:
    """How one table is maintained."""

    target_file_size: int = DEFAULT_TARGET_FILE_SIZE
    z_order: tuple[str, ...] = ()
    retention: timedelta = MIN_RETENTION
    allow_short_retention: bool = False
    compact: bool = True
    vacuum: bool = True
    checkpoint: bool = True
    small_file_bytes: int = DEFAULT_SMALL_FILE_BYTES

    def __post_init__(self) -> None:
        check_retention(self.retention, self.allow_short_retention)

    @classmethod
    def for_contract(
        cls, contract: Contract, *, raw: bool, **overrides: Any
    ) -> MaintenanceSettings:
        """The settings of ``contract``'s raw (``raw``) or dead-letter table, then overrides."""
        values: dict[str, Any] = {
            "target_file_size": target_file_size(contract),
            "z_order": z_order_columns(contract) if raw else (),
        }
        return cls(**{**values, **overrides})


@dataclass(frozen=True)
class TableStats:
    """The files of one table version."""

    version: int
    files: int
    bytes: int
    small_files: int
    """Files below the small-file size."""
    compactable_small_files: int
    """Small files in partitions that hold more than one small file (what compaction merges)."""
    app_transactions: int

    def as_metadata(self, prefix: str) -> dict[str, int]:
        """Plain numbers keyed ``<prefix>_<field>`` (Dagster plots them over runs)."""
        return {f"{prefix}_{k}": v for k, v in self.__dict__.items()}


def table_stats(table: DeltaTable, small_file_bytes: int = DEFAULT_SMALL_FILE_BYTES) -> TableStats:
    """Files, bytes and small files of ``table``'s loaded version (reads the log only)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    sizes = actions["size_bytes"].to_pylist()
    partition_columns = [c for c in actions.column_names if c.startswith("partition.")]
    small_per_partition: dict[tuple[Any, ...], int] = {}
    rows = actions.select(partition_columns).to_pylist() if partition_columns else []
    for i, size in enumerate(sizes):
        if size < small_file_bytes:
            key = tuple(rows[i].values()) if rows else ()
            small_per_partition[key] = small_per_partition.get(key, 0) + 1
    return TableStats(
        version=table.version(),
        files=len(sizes),
        bytes=int(pc.sum(actions["size_bytes"]).as_py() or 0) if sizes else 0,
        small_files=sum(small_per_partition.values()),
        compactable_small_files=sum(n for n in small_per_partition.values() if n > 1),
        app_transactions=len(app_transactions(table)),
    )


@dataclass
class MaintenanceReport:
    """Before and after one table's maintenance, and what each step did."""

    uri: str
    before: TableStats
    after: TableStats | None = None
    files_compacted: int = 0
    files_written: int = 0
    compaction_attempts: int = 0
    files_vacuumed: int = 0
    log_entries_removed: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_metadata(self, prefix: str) -> dict[str, Any]:
        """Flat metadata entries keyed ``<prefix>_…``."""
        after = self.after or self.before
        return {
            **self.before.as_metadata(f"{prefix}_before"),
            **after.as_metadata(f"{prefix}_after"),
            f"{prefix}_files_compacted": self.files_compacted,
            f"{prefix}_files_written": self.files_written,
            f"{prefix}_files_vacuumed": self.files_vacuumed,
            f"{prefix}_log_entries_removed": self.log_entries_removed,
            f"{prefix}_duration_s": round(self.seconds, 3),
        }


def compact(
    uri: str, settings: MaintenanceSettings, metadata: dict[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    """Compact (or z-order) the table at ``uri``; returns the metrics and the attempts made.

    A compaction that loses its commit race (a writer removed a file it rewrites) is planned
    again on the newest version of the table: the table is reloaded, never blindly retried.
    """
    properties = CommitProperties(custom_metadata=metadata or {})
    for attempt in range(1, COMPACTION_ATTEMPTS + 1):
        table = delta_table(uri)
        try:
            if settings.z_order:
                metrics = table.optimize.z_order(
                    list(settings.z_order),
                    target_size=settings.target_file_size,
                    commit_properties=properties,
                )
            else:
                metrics = table.optimize.compact(
                    target_size=settings.target_file_size, commit_properties=properties
                )
        except CommitFailedError as exc:
            log.info("compaction of %s lost its commit race (%s); planning again", uri, exc)
            continue
        return metrics, attempt
    raise CompactionConflictError(
        f"{uri}: compaction lost its commit race {COMPACTION_ATTEMPTS} times; a writer is "
        "running beside maintenance (it must not: they share the table's pool)"
    )


def maintain(
    uri: str, settings: MaintenanceSettings, metadata: dict[str, str] | None = None
) -> MaintenanceReport:
    """Compact, vacuum, checkpoint and clean the log of the table at ``uri`` (see module doc).

    Raises :class:`LedgerLostError` if an app transaction disappeared (it never should).
    """
    started = time.perf_counter()
    check_retention(settings.retention, settings.allow_short_retention)
    table = delta_table(uri)
    ledger = app_transactions(table)
    report = MaintenanceReport(uri=uri, before=table_stats(table, settings.small_file_bytes))
    if settings.compact:
        metrics, report.compaction_attempts = compact(uri, settings, metadata)
        report.files_compacted = int(metrics.get("numFilesRemoved", 0))
        report.files_written = int(metrics.get("numFilesAdded", 0))
        report.steps.append("z_order" if settings.z_order else "compact")
    table = delta_table(uri)
    if settings.vacuum:
        hours = math.ceil(settings.retention.total_seconds() / 3600)
        removed = table.vacuum(
            retention_hours=hours,
            dry_run=False,
            enforce_retention_duration=not settings.allow_short_retention,
            full=True,
            commit_properties=CommitProperties(custom_metadata=metadata or {}),
        )
        report.files_vacuumed = len(removed)
        report.steps.append("vacuum")
    if settings.checkpoint:
        table.update_incremental()
        table.create_checkpoint()
        entries = len(log_files(table)[1])
        table.cleanup_metadata()
        report.log_entries_removed = max(0, entries - len(log_files(table)[1]))
        report.steps.append("checkpoint")
    table = delta_table(uri)
    lost = sorted(app for app in ledger if table.transaction_version(app) is None)
    if lost:
        raise LedgerLostError(f"{uri}: app transactions lost by maintenance: {lost[:5]}")
    report.after = table_stats(table, settings.small_file_bytes)
    report.seconds = time.perf_counter() - started
    return report
