"""Merges that never duplicate a key, and a merge that lost its commit race recomputed."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pyarrow as pa
from deltalake import DeltaTable

from assets_project.demo.shop_db import init_orders, simulate_traffic
from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import failpoint_hook
from assets_project.lib.lake import LakeLayout
from assets_project.lib.maintenance import MaintenanceSettings, compact
from assets_project.lib.merging import NewestPerKey
from assets_project.lib.postgres import extract_table
from tests.lib.test_postgres import assert_lake_equals_source, lake_orders

ORDERS = load_contract("orders")


def test_the_newest_version_of_each_key_wins_and_the_later_of_equal_ones() -> None:
    rows = pa.table(
        {
            "k": [1, 2, 1, 3, 2, 1],
            "u": [5, 1, 7, 2, 1, 7],
            "v": ["a", "b", "c", "d", "e", "f"],
            "_source_line": [1, 2, 3, 4, 5, 6],
        }
    )
    newest = NewestPerKey(
        pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()), ["k"], "u"
    )
    result = newest.reader().read_all()
    assert result.schema == rows.schema
    assert sorted(result.select(["k", "v"]).to_pylist(), key=lambda r: r["k"]) == [
        {"k": 1, "v": "f"},  # u=7 twice: the later line wins
        {"k": 2, "v": "e"},
        {"k": 3, "v": "d"},
    ]
    assert (newest.rows_in, newest.rows_out) == (6, 3)


def test_batches_of_a_source_that_enforces_its_key_pass_through_counted() -> None:
    rows = pa.table({"k": [1, 1, 2], "u": [1, 2, 3]})
    newest = NewestPerKey(
        pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()), ["k"], "u", unique=True
    )
    assert newest.reader().read_all() == rows  # not reduced: the source vouches for the key
    assert (newest.rows_in, newest.rows_out) == (3, 3)


def test_a_key_twice_in_the_extracted_batch_lands_once_in_its_newest_version(
    postgres_url: str, layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=300, seed=5, defects=0.0)
    extract_table(postgres_url, ORDERS, layout, batch_id="b1")
    with psycopg.connect(postgres_url) as connection:
        # A source whose key is not enforced (a view, a replica without constraints).
        connection.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        order = connection.execute(
            "SELECT order_id, updated_at FROM orders ORDER BY order_id LIMIT 1"
        ).fetchone()
        assert order is not None
        for quantity, later in ((2, 1), (3, 2)):
            connection.execute(
                "INSERT INTO orders SELECT order_id, user_id, product_id, %s, unit_price, "
                "status, created_at, updated_at + %s FROM orders WHERE order_id = %s "
                "AND updated_at = %s",
                (quantity, timedelta(minutes=later), order[0], order[1]),
            )
        new_id = 10_000_000
        for quantity in (4, 5):
            connection.execute(
                "INSERT INTO orders SELECT %s, user_id, product_id, %s, unit_price, status, "
                "created_at, updated_at + interval '1 hour' FROM orders WHERE order_id = %s "
                "AND updated_at = %s",
                (new_id, quantity, order[0], order[1]),
            )

    result = extract_table(
        postgres_url, ORDERS, layout, batch_id="b2", overlap=timedelta(days=36500)
    )
    assert result.deduplicated

    raw = {row[0]: row for row in lake_orders(layout)}
    assert len(raw) == len(lake_orders(layout)), "a key is in raw twice"
    assert raw[order[0]][3] == 3  # the newest of its three versions
    assert raw[new_id][3] == 5  # two equal versions of a new key: the later one, once


def test_a_merge_that_lost_its_race_to_maintenance_is_recomputed_on_the_new_table(
    postgres_url: str, layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=2000, seed=6, defects=0.02)
    extract_table(postgres_url, ORDERS, layout, batch_id="b1")
    for run in range(2):  # a history of merges
        simulate_traffic(postgres_url, inserts=20, updates=40, seed=run)
        extract_table(postgres_url, ORDERS, layout, batch_id=f"m{run}")
    simulate_traffic(postgres_url, inserts=10, updates=30, seed=7)
    uri = layout.raw_uri("orders")
    reached: list[str] = []
    compacted: list[int] = []

    def compact_meanwhile(name: str) -> None:
        if name == "postgres.rows_written":
            reached.append(name)
            if not compacted:  # the merge's files are written, its commit comes next
                # A z-order rewrites every file (a plain compaction only merges small ones).
                metrics, _ = compact(uri, MaintenanceSettings(z_order=("order_id",)))
                compacted.append(metrics["numFilesRemoved"])

    version = DeltaTable(uri).version()
    with failpoint_hook(compact_meanwhile):
        result = extract_table(postgres_url, ORDERS, layout, batch_id="raced")

    assert compacted[0] > 0
    assert reached == ["postgres.rows_written"] * 2  # the extraction ran again, once
    assert result.rows_written > 0
    operations = [
        c["operation"] for c in DeltaTable(uri).history(DeltaTable(uri).version() - version)
    ]
    assert "OPTIMIZE" in operations and "WRITE" in operations
    assert_lake_equals_source(postgres_url, layout)
