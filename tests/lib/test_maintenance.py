"""Maintenance of real Delta tables: compaction, z-order, vacuum, checkpoint, log cleanup, and
exactly-once ingestion (Kafka, PostgreSQL) resuming unharmed after it."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from assets_project.demo.produce import event_lines
from assets_project.demo.shop_db import init_orders, simulate_traffic
from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import LakeLayout, delta_table, is_object_store, storage_options
from assets_project.lib.maintenance import (
    DEFAULT_TARGET_FILE_SIZE,
    MIN_RETENTION,
    MaintenanceSettings,
    RetentionTooShortError,
    check_retention,
    maintain,
    table_stats,
)
from assets_project.lib.postgres import extract_table
from assets_project.lib.timetravel import app_transactions, log_files
from tests.lib.test_kafka import _identities, _ingest, _produced, _publish
from tests.lib.test_postgres import assert_lake_equals_source
from tests.services.tansu import TansuBroker

DAY = date(2026, 1, 1)


def _fragmented(uri: str, drops: int = 12, days: int = 3) -> pa.Table:
    """A table fed by many small appends, each with its own app transaction; its rows."""
    tables = []
    for i in range(drops):
        rows = pa.table(
            {
                "k": pa.array(range(i * 10, i * 10 + 10), pa.int64()),
                "user_id": pa.array([(i * 7 + j) % 13 for j in range(10)], pa.int64()),
                "p": pa.array([DAY + timedelta(days=i % days)] * 10, pa.date32()),
            }
        )
        write_deltalake(
            uri,
            rows,
            mode="append",
            partition_by=["p"],
            storage_options=storage_options(uri),
            commit_properties=CommitProperties(app_transactions=[Transaction(f"file-{i}", 1)]),
        )
        tables.append(rows)
    return pa.concat_tables(tables)


def _log_entries(uri: str) -> set[str]:
    """The names of the files in the ``_delta_log`` of the table at ``uri`` (any store)."""
    return {info.base_name for info in log_files(delta_table(uri))[1]}


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.select(["k", "user_id", "p"]).to_pylist(), key=lambda r: r["k"])


def _age_log(uri: str, days: int) -> None:
    """Make every log entry look ``days`` old (log cleanup keeps 30 days by default).

    An object store's modification times cannot be set: there the table's log retention goes
    to zero instead, which makes every entry before the next checkpoint as old as needed.
    """
    if is_object_store(uri):
        delta_table(uri).alter.set_table_properties(
            {"delta.logRetentionDuration": "interval 0 seconds"}
        )
        return
    then = time.time() - days * 86400
    for path in (Path(uri) / "_delta_log").glob("*.json"):
        os.utime(path, (then, then))


def test_compaction_checkpoint_and_log_cleanup_keep_rows_and_every_app_transaction(
    lake_layout: LakeLayout,
) -> None:
    uri = f"{lake_layout.lake_uri}/t"
    rows = _fragmented(uri)
    ledger = app_transactions(DeltaTable(uri))
    assert ledger == {f"file-{i}": 1 for i in range(12)}
    _age_log(uri, 40)

    report = maintain(uri, MaintenanceSettings())

    assert report.before.files == 12 and report.before.compactable_small_files == 12
    assert report.after is not None
    assert report.after.files == 3  # one per partition
    assert report.after.compactable_small_files == 0
    assert (report.files_compacted, report.files_written) == (12, 3)
    assert report.log_entries_removed > 0
    assert report.steps == ["compact", "vacuum", "checkpoint"]
    table = DeltaTable(uri)
    assert _sorted(table.to_pyarrow_table()) == _sorted(rows)
    # The checkpoint carries the ledger: the commits that wrote it are gone from the log.
    assert f"{0:020d}.json" not in _log_entries(uri)
    assert app_transactions(table) == ledger
    assert all(table.transaction_version(app) == 1 for app in ledger)
    assert report.files_vacuumed == 0  # within the retention


def test_a_retention_below_seven_days_needs_the_explicit_override() -> None:
    with pytest.raises(RetentionTooShortError, match="below 7 days"):
        MaintenanceSettings(retention=timedelta(days=6, hours=23))
    with pytest.raises(RetentionTooShortError):
        check_retention(timedelta(0))
    check_retention(MIN_RETENTION)
    check_retention(timedelta(0), allow_short_retention=True)
    with pytest.raises(RetentionTooShortError, match="negative"):
        check_retention(timedelta(hours=-1), allow_short_retention=True)


def test_vacuum_within_the_retention_breaks_no_reader_of_an_older_snapshot(
    lake_layout: LakeLayout,
) -> None:
    uri = f"{lake_layout.lake_uri}/t"
    rows = _fragmented(uri)
    reader = DeltaTable(uri)  # holds the snapshot before maintenance
    dataset = reader.to_pyarrow_dataset()

    report = maintain(uri, MaintenanceSettings())
    assert report.files_compacted == 12 and report.files_vacuumed == 0
    assert _sorted(dataset.to_table()) == _sorted(rows)
    assert _sorted(reader.to_pyarrow_table()) == _sorted(rows)

    # What the retention protects: with the override to 0 the old snapshot's files are gone.
    short = maintain(uri, MaintenanceSettings(retention=timedelta(0), allow_short_retention=True))
    assert short.files_vacuumed == 12
    with pytest.raises(OSError):
        dataset.to_table()
    assert _sorted(DeltaTable(uri).to_pyarrow_table()) == _sorted(rows)


def test_vacuum_deletes_old_uncommitted_files_and_keeps_a_running_writers_files(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "t")
    _fragmented(uri, drops=2)
    folder = Path(uri) / f"p={DAY.isoformat()}"
    stale = folder / "part-stale-killed-writer.parquet"  # a writer killed 8 days ago
    fresh = folder / "part-fresh-running-writer.parquet"  # written, commit still to come
    for path in (stale, fresh):
        pq.write_table(pa.table({"k": [1]}), path)
    then = time.time() - 8 * 86400
    os.utime(stale, (then, then))

    report = maintain(uri, MaintenanceSettings(compact=False))

    assert report.files_vacuumed == 1
    assert not stale.exists() and fresh.exists()


def test_z_order_rewrites_the_table_on_the_named_columns_with_the_same_rows(
    lake_layout: LakeLayout,
) -> None:
    uri = f"{lake_layout.lake_uri}/t"
    rows = _fragmented(uri, days=1)
    report = maintain(uri, MaintenanceSettings(z_order=("user_id",)))
    assert report.steps[0] == "z_order"
    assert report.after is not None and report.after.files == 1
    optimize = [c for c in DeltaTable(uri).history() if c["operation"] == "OPTIMIZE"]
    assert optimize[0]["operationMetrics"]["plannerStrategy"] == "zOrder"
    assert _sorted(DeltaTable(uri).to_pyarrow_table()) == _sorted(rows)


def test_small_files_are_counted_where_compaction_can_merge_them(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _fragmented(uri, drops=5, days=4)  # days 0..3: one partition holds two files
    stats = table_stats(DeltaTable(uri))
    assert (stats.files, stats.small_files, stats.compactable_small_files) == (5, 5, 2)
    assert table_stats(DeltaTable(uri), small_file_bytes=1).small_files == 0


EVENTS = load_contract("user_events")
ORDERS = load_contract("orders")


def _maintain_source(layout: LakeLayout, source: str, z_order: tuple[str, ...] = ()) -> None:
    """Compaction (or z-order), vacuum, checkpoint and log cleanup of both tables, with an aged
    log; the raw table's files are rewritten."""
    for uri in (layout.raw_uri(source), layout.dlq_uri(source)):
        _age_log(uri, 40)
        raw = uri == layout.raw_uri(source)
        report = maintain(uri, MaintenanceSettings(z_order=z_order if raw else ()))
        assert report.log_entries_removed > 0
        if raw:
            assert report.files_compacted > 0 and report.files_written > 0


def test_a_kafka_resume_after_maintenance_skips_what_the_lake_holds(
    kafka_broker: TansuBroker, kafka_topic: str, lake_layout: LakeLayout
) -> None:
    messages = event_lines(900, seed=21)
    report = _publish(kafka_broker, kafka_topic, messages, partitions=3)
    for run in range(3):  # small chunks: many small files and commits
        _ingest(
            kafka_broker, lake_layout, kafka_topic, f"r{run}", max_messages=200, chunk_messages=50
        )
    _maintain_source(lake_layout, "user_events")

    resumed = _ingest(kafka_broker, lake_layout, kafka_topic, "after")
    # The stored offsets survived: only what the three runs did not read is read now.
    assert resumed.messages == len(messages) - 3 * 200
    raw, dlq = _identities(lake_layout)
    assert len(raw) == len(set(raw)) and len(dlq) == len(set(dlq))
    assert sorted(raw + dlq) == sorted(_produced(report, kafka_topic))


def test_a_postgres_resume_after_maintenance_reads_only_past_the_watermark(
    postgres_url: str, lake_layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=1500, seed=8, defects=0.02)
    extract_table(postgres_url, ORDERS, lake_layout, batch_id="b1")
    for run in range(3):
        simulate_traffic(postgres_url, inserts=5, updates=5, seed=run)
        extract_table(postgres_url, ORDERS, lake_layout, batch_id=f"m{run}", overlap=timedelta(0))
    # A z-order rewrites every file (the merges may have left one file per partition).
    _maintain_source(lake_layout, "orders", z_order=("order_id",))

    simulate_traffic(postgres_url, inserts=4, updates=3, seed=9)
    result = extract_table(
        postgres_url, ORDERS, lake_layout, batch_id="after", overlap=timedelta(0)
    )
    assert result.mode == "merge"
    assert result.rows_in < 100  # the watermark survived: not the 1500 rows again
    assert_lake_equals_source(postgres_url, lake_layout)


def test_the_contract_names_the_z_order_and_the_dead_letter_table_is_only_compacted() -> None:
    """user_events' contract (custom property maintenance) z-orders its raw table by user."""
    events, orders = load_contract("user_events"), load_contract("orders")
    assert MaintenanceSettings.for_contract(events, raw=True).z_order == ("user_id",)
    assert MaintenanceSettings.for_contract(events, raw=False).z_order == ()
    plain = MaintenanceSettings.for_contract(orders, raw=True)
    assert (plain.z_order, plain.target_file_size) == ((), DEFAULT_TARGET_FILE_SIZE)
    sized = events.model_copy(
        update={"maintenance": events.maintenance.model_copy(update={"target_file_size": 1 << 26})}
    )
    assert MaintenanceSettings.for_contract(sized, raw=True).target_file_size == 1 << 26
