"""Time travel and restore on real Delta tables fed by the file-drop ingestion."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from assets_project.demo.produce import event_lines
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file, transaction_id
from assets_project.lib.lake import LakeLayout
from assets_project.lib.timetravel import (
    app_transactions,
    history,
    ledger_rewind,
    parse_as_of,
    read_as_of,
    restore,
)
from tests.lib.test_kafka import _identities, _ingest, _produced, _publish
from tests.services.tansu import TansuBroker

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at"


def drop(layout: LakeLayout, n: int, rows: int = 20) -> Path:
    """A valid users CSV drop with ``rows`` users numbered from ``n * 100``."""
    path = layout.landing_dir / "users" / f"users_{n:04d}.csv"
    lines = [HEADER] + [
        f"{n * 100 + i},u{n}.{i}@example.com,2025-03-0{1 + i % 9},basic,europe,"
        f"2025-04-01 00:00:0{i % 10}"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ingest(layout: LakeLayout, path: Path):
    return ingest_file(path, USERS, layout, source=f"users/{path.name}")


def user_ids(table: DeltaTable) -> list[int]:
    return sorted(table.to_pyarrow_table(columns=["user_id"])["user_id"].to_pylist())


def test_every_version_reads_back_exactly_as_it_was(lake_layout: LakeLayout) -> None:
    uri = lake_layout.raw_uri("users")
    snapshots: dict[int, list[dict]] = {}
    moments: dict[int, datetime] = {}
    for n in range(4):
        ingest(lake_layout, drop(lake_layout, n))
        table = DeltaTable(uri)
        snapshots[table.version()] = sorted(
            table.to_pyarrow_table().to_pylist(), key=lambda r: r["user_id"]
        )
        moments[table.version()] = datetime.now(UTC)
        time.sleep(0.01)  # distinct commit timestamps
    for version, rows in snapshots.items():
        by_version = read_as_of(uri, version).to_pylist()
        assert sorted(by_version, key=lambda r: r["user_id"]) == rows
        by_time = read_as_of(uri, moments[version]).to_pylist()
        assert sorted(by_time, key=lambda r: r["user_id"]) == rows

    commits = history(DeltaTable(uri))
    assert [c.version for c in commits] == [*sorted(snapshots, reverse=True), 0]
    newest = commits[0]
    assert newest.operation == "WRITE" and newest.batch_id
    assert list(newest.app_transactions.values()) == [1]
    assert next(iter(newest.app_transactions)).startswith("file-")


def test_restore_is_a_new_commit_and_ingestion_takes_up_again_what_it_removed(
    lake_layout: LakeLayout,
) -> None:
    uri = lake_layout.raw_uri("users")
    paths = [drop(lake_layout, n) for n in range(3)]
    ingest(lake_layout, paths[0])
    kept = DeltaTable(uri).version()
    for path in paths[1:]:
        ingest(lake_layout, path)
    before = DeltaTable(uri).version()

    result = restore(uri, kept)

    table = DeltaTable(uri)
    assert result.version == table.version() == before + 1
    assert table.history(1)[0]["operation"] == "RESTORE"
    assert user_ids(table) == list(range(0, 20))
    # The ledger went back with the rows: the removed drops are not marked ingested any more.
    removed = {transaction_id(ingest(lake_layout, p).sha256) for p in paths[1:]}  # ingest again
    assert set(result.ledger_rewound) == removed
    assert all(v == 0 for v in result.ledger_rewound.values())
    assert user_ids(DeltaTable(uri)) == sorted(n * 100 + i for n in range(3) for i in range(20))
    # ... and exactly once: a drop already in the table again is skipped.
    assert all(ingest(lake_layout, p).already_ingested for p in paths)
    assert len(user_ids(DeltaTable(uri))) == 60
    # The earlier states are all still in the history.
    assert user_ids(DeltaTable(uri, version=before)) == user_ids(DeltaTable(uri))


def test_the_ledger_of_a_version_is_read_through_checkpoints(lake_layout: LakeLayout) -> None:
    uri = lake_layout.raw_uri("users")
    for n in range(3):
        ingest(lake_layout, drop(lake_layout, n))
    DeltaTable(uri).create_checkpoint()
    ingest(lake_layout, drop(lake_layout, 3))
    table = DeltaTable(uri)
    ledger = app_transactions(table)
    assert len(ledger) == 4 and set(ledger.values()) == {1}
    assert all(table.transaction_version(app) == 1 for app in ledger)
    table.load_as_version(2)
    assert len(app_transactions(table)) == 2


def test_ledger_rewind_and_as_of_parsing() -> None:
    assert ledger_rewind({"a": 5, "b": 1, "c": 2}, {"a": 3, "c": 2}) == {"a": 3, "b": 0}
    assert parse_as_of("12") == 12
    assert parse_as_of("2026-12-01T08:00:00Z") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_as_of("2026-12-01 08:00") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither"):
        parse_as_of("yesterday")


def test_a_restored_kafka_table_reads_the_removed_offsets_again_exactly_once(
    kafka_broker: TansuBroker, kafka_topic: str, lake_layout: LakeLayout
) -> None:
    report = _publish(kafka_broker, kafka_topic, event_lines(400, seed=31), partitions=2)
    _ingest(kafka_broker, lake_layout, kafka_topic, "first", max_messages=150, chunk_messages=50)
    uri = lake_layout.raw_uri("user_events")
    kept = DeltaTable(uri).version()
    kept_rows = DeltaTable(uri).count()
    _ingest(kafka_broker, lake_layout, kafka_topic, "rest")
    assert DeltaTable(uri).count() > kept_rows

    result = restore(uri, kept)  # the raw table only; its dead letters stay
    assert result.ledger_rewound and DeltaTable(uri).count() == kept_rows

    again = _ingest(kafka_broker, lake_layout, kafka_topic, "again")
    assert again.messages > 0
    raw, dlq = _identities(lake_layout)
    assert len(raw) == len(set(raw)) and len(dlq) == len(set(dlq))
    assert sorted(raw + dlq) == sorted(_produced(report, kafka_topic))
