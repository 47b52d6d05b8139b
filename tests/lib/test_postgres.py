"""Incremental extraction from a real PostgreSQL server into the raw and dead-letter tables."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from deltalake import DeltaTable

from assets_project.demo.shop_db import init_orders, simulate_traffic
from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import failpoint_hook
from assets_project.lib.lake import LakeLayout
from assets_project.lib.postgres import (
    PermanentSourceError,
    Watermarks,
    extract_table,
    is_transient,
    key_enforced,
    read_watermarks,
    retrying,
    source_label,
    watermark_version,
)
from tests.postgres_server import is_valid_order, source_orders

ORDERS = load_contract("orders")
COLUMNS = [c.name for c in ORDERS.columns]


def lake_orders(layout: LakeLayout) -> list[tuple]:
    """Every row of the raw orders table as (column values...), duplicates kept."""
    table = DeltaTable(layout.raw_uri("orders")).to_pyarrow_table(columns=COLUMNS)
    return [tuple(row[c] for c in COLUMNS) for row in table.to_pylist()]


def dead_letter(layout: LakeLayout) -> list[dict]:
    """The dead-letter records (parsed back from their text) with their reasons."""
    table = DeltaTable(layout.dlq_uri("orders")).to_pyarrow_table()
    return [
        {**json.loads(row["record"]), "_reason": row["reason"]}
        for row in table.to_pylist()
        if row["_source"] == source_label(ORDERS)
    ]


def assert_lake_equals_source(url: str, layout: LakeLayout) -> None:
    """Raw holds exactly the valid orders, each once, in their current version; every invalid
    current version is in dead-letter exactly once."""
    source = source_orders(url)
    raw = lake_orders(layout)
    assert len(raw) == len({row[0] for row in raw}), "an order is in raw twice"
    expected = {k: v for k, v in source.items() if is_valid_order(v)}
    assert {row[0]: row for row in raw} == expected
    records = [(int(r["order_id"]), r["updated_at"]) for r in dead_letter(layout)]
    assert len(records) == len(set(records)), "a record is in dead-letter twice"
    invalid = {(k, v[7].isoformat(sep=" ")) for k, v in source.items() if not is_valid_order(v)}
    assert invalid <= {(k, _pg_text(ts)) for k, ts in records}


def _pg_text(value: str) -> str:
    return datetime.fromisoformat(value).isoformat(sep=" ")


def _extract(url: str, layout: LakeLayout, batch: str, **options):
    return extract_table(url, ORDERS, layout, batch_id=batch, **options)


def test_first_load_takes_every_row_and_stores_the_watermark(
    postgres_url: str, lake_layout: LakeLayout
) -> None:
    loaded = init_orders(postgres_url, size=5000, seed=3, defects=0.02)
    result = _extract(postgres_url, lake_layout, "b1")
    assert result.mode == "full"
    assert result.rows_in == loaded
    assert result.rows_rejected > 0
    assert result.rows_written + result.rows_rejected == loaded
    assert_lake_equals_source(postgres_url, lake_layout)

    newest = max(row[7] for row in source_orders(postgres_url).values())
    assert result.watermark == newest
    assert read_watermarks(lake_layout, ORDERS).raw == newest
    raw = DeltaTable(lake_layout.raw_uri("orders"))
    assert raw.transaction_version(source_label(ORDERS)) == watermark_version(newest)
    last_commit = raw.history(1)[0]
    assert last_commit["watermark"] == newest.isoformat()  # same commit as the rows
    assert last_commit["batch_id"] == "b1"


def test_incremental_load_reads_only_the_overlap_and_merges_by_key(
    postgres_url: str, lake_layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=5000, seed=4, defects=0.0)
    _extract(postgres_url, lake_layout, "b1")
    before = source_orders(postgres_url)
    traffic = simulate_traffic(postgres_url, inserts=7, updates=11, seed=1)
    result = _extract(postgres_url, lake_layout, "b2", overlap=timedelta(minutes=1))
    assert result.mode == "merge"
    # Only rows updated in the minute before the last watermark and since are read.
    source = source_orders(postgres_url)
    assert result.since is not None
    in_window = {k for k, row in source.items() if row[7] >= result.since}
    assert result.rows_in == len(in_window) < len(source)
    changed = set(traffic.inserted) | set(traffic.updated)
    assert changed <= in_window
    assert result.rows_written == len(changed)
    assert result.rows_unchanged == len(in_window - changed)
    assert all(before[k] == source[k] for k in in_window - changed)
    assert_lake_equals_source(postgres_url, lake_layout)

    again = _extract(postgres_url, lake_layout, "b3", overlap=timedelta(minutes=1))
    assert again.rows_in == result.rows_in  # the overlap is re-read ...
    assert again.rows_written == 0  # ... and changes nothing
    assert again.rows_unchanged == again.rows_in
    assert_lake_equals_source(postgres_url, lake_layout)


@pytest.mark.parametrize("overlap_minutes, captured", [(5, True), (0, False)])
def test_a_late_committing_transaction_inside_the_overlap_is_captured(
    postgres_url: str, layout: LakeLayout, overlap_minutes: int, captured: bool
) -> None:
    init_orders(postgres_url, size=2000, seed=5, defects=0.0)
    _extract(postgres_url, layout, "b1")
    with psycopg.connect(postgres_url) as late, psycopg.connect(postgres_url) as other:
        for connection in (late, other):
            connection.execute("SET TIME ZONE 'UTC'")
            connection.commit()
        late.execute("INSERT INTO orders VALUES (900001, 1, 1, 1, 9.99, 'paid', now(), now())")
        time.sleep(0.05)
        other.execute("INSERT INTO orders VALUES (900002, 1, 1, 1, 9.99, 'paid', now(), now())")
        other.commit()
        # An extraction runs while the long transaction is still open: it sees 900002 only,
        # and its watermark moves past the time that 900001 will carry.
        during = _extract(postgres_url, layout, "b2", overlap=timedelta(minutes=overlap_minutes))
        late.commit()
    assert 900002 in {row[0] for row in lake_orders(layout)}
    assert 900001 not in {row[0] for row in lake_orders(layout)}
    assert during.watermark is not None
    after = _extract(postgres_url, layout, "b3", overlap=timedelta(minutes=overlap_minutes))
    assert (900001 in {row[0] for row in lake_orders(layout)}) is captured
    if captured:
        assert after.rows_written == 1
        assert_lake_equals_source(postgres_url, layout)


def test_many_runs_with_traffic_never_duplicate_or_lose_a_row(
    postgres_url: str, layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=10_000, seed=6, defects=0.01)
    for run in range(8):
        simulate_traffic(
            postgres_url, inserts=20, updates=30, late=3, seed=run, size=10_000, defects=0.05
        )
        _extract(postgres_url, layout, f"b{run}")
        assert_lake_equals_source(postgres_url, layout)
    rejected = dead_letter(layout)
    assert all(r["_reason"] for r in rejected)


def test_rewind_and_full_refresh_restore_rows_lost_from_the_lake(
    postgres_url: str, layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=5000, seed=7, defects=0.0)
    _extract(postgres_url, layout, "b1")
    # Someone deleted old rows from the raw table: a normal run does not look that far back.
    DeltaTable(layout.raw_uri("orders")).delete("order_id <= 50")
    _extract(postgres_url, layout, "b2")
    assert min(row[0] for row in lake_orders(layout)) > 50

    oldest = min(row[7] for row in source_orders(postgres_url).values())
    rewound = _extract(postgres_url, layout, "b3", rewind_to=oldest)
    assert rewound.since == oldest
    assert rewound.rows_in == len(source_orders(postgres_url))
    assert_lake_equals_source(postgres_url, layout)
    assert read_watermarks(layout, ORDERS).raw == rewound.watermark

    DeltaTable(layout.raw_uri("orders")).delete("order_id % 2 = 0")
    refreshed = _extract(postgres_url, layout, "b4", full_refresh=True)
    assert refreshed.mode == "full"
    assert_lake_equals_source(postgres_url, layout)


def _drop_order(layout: LakeLayout, name: str, order_id: int, **extra: str) -> None:
    """Ingest a CSV drop of one paid order (``extra``: columns the contract does not know)."""
    from assets_project.lib.ingest import ingest_file

    header = "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at"
    row = f"{order_id},1,1,2,5.00,paid,2026-01-02 10:00:00,2026-01-02 11:00:00"
    drop = layout.landing_dir / "orders" / name
    drop.write_text(",".join([header, *extra]) + "\n" + ",".join([row, *extra.values()]) + "\n")
    ingest_file(drop, ORDERS, layout, source=f"orders/{name}")


def test_a_full_refresh_keeps_rows_that_came_from_file_drops(
    postgres_url: str, layout: LakeLayout
) -> None:
    _drop_order(layout, "orders_export.csv", 777777)
    init_orders(postgres_url, size=2000, seed=8, defects=0.0)
    _extract(postgres_url, layout, "b1")
    _extract(postgres_url, layout, "b2", full_refresh=True)
    assert 777777 in {row[0] for row in lake_orders(layout)}


def test_a_column_a_drop_added_survives_extractions_that_do_not_know_it(
    postgres_url: str, layout: LakeLayout
) -> None:
    """A CSV drop with an extra column widens the raw table (schema merge); the extraction's
    rows then carry no value for it, and a merge or full refresh that rewrites the drop's file
    keeps the drop's value."""
    _drop_order(layout, "wide.csv", 888888, coupon="SPRING")
    init_orders(postgres_url, size=500, seed=3, defects=0.0)
    _extract(postgres_url, layout, "b1")
    simulate_traffic(postgres_url, inserts=5, updates=20, seed=4)
    _extract(postgres_url, layout, "m1")
    _extract(postgres_url, layout, "b2", full_refresh=True)
    table = DeltaTable(layout.raw_uri("orders")).to_pyarrow_table()
    coupons = dict(zip(table["order_id"].to_pylist(), table["coupon"].to_pylist(), strict=True))
    assert coupons.pop(888888) == "SPRING"
    assert set(coupons.values()) == {None}
    assert len(coupons) == len(source_orders(postgres_url))


def test_permanent_errors_fail_at_once_and_transient_ones_are_retried(
    postgres_url: str, layout: LakeLayout
) -> None:
    params = psycopg.conninfo.conninfo_to_dict(postgres_url)
    wrong_password = psycopg.conninfo.make_conninfo(**{**params, "password": "wrong"})
    retry = retrying(attempts=3, max_wait=0.01)
    with pytest.raises(PermanentSourceError, match="password authentication failed"):
        for attempt in retry:
            with attempt:
                _extract(wrong_password, layout, "b1")
    assert retry.statistics["attempt_number"] == 1

    # The database is there but the table is not.
    retry = retrying(attempts=3, max_wait=0.01)
    with pytest.raises(PermanentSourceError, match=r'relation "public\.orders" does not exist'):
        for attempt in retry:
            with attempt:
                _extract(postgres_url, layout, "b1")
    assert retry.statistics["attempt_number"] == 1

    # Nothing listens on this port: connection refused heals once the server is back.
    refused = psycopg.conninfo.make_conninfo(**{**params, "port": "1"})
    retry = retrying(attempts=3, max_wait=0.01)
    with pytest.raises(psycopg.OperationalError, match="refused"):
        for attempt in retry:
            with attempt:
                _extract(refused, layout, "b1", connect_timeout=2)
    assert retry.statistics["attempt_number"] == 3
    assert is_transient(psycopg.errors.SerializationFailure())
    assert is_transient(psycopg.errors.DeadlockDetected())
    assert not is_transient(psycopg.errors.UndefinedTable())


def test_a_connection_killed_during_the_extraction_is_retried_and_loses_nothing(
    postgres_url: str, layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=20_000, seed=10, defects=0.01)
    kills: list[int] = []

    def terminate_the_extraction(step: str) -> None:
        """After the snapshot, before COPY: the server ends the extraction's session."""
        if step != "postgres.snapshot" or kills:
            return
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            terminated = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        kills.append(len(terminated))

    retry = retrying(attempts=3, max_wait=0.01)
    with failpoint_hook(terminate_the_extraction):
        for attempt in retry:
            with attempt:
                result = _extract(postgres_url, layout, "b1")
    assert kills == [1]
    assert retry.statistics["attempt_number"] == 2
    assert result.rows_in == 2000
    assert_lake_equals_source(postgres_url, layout)


OUT_OF_RANGE = "outside the supported range 0001-01-01..9999-12-31"
# (created_at, updated_at) as PostgreSQL takes them; its COPY writes them back as text such as
# 'infinity', '2026-01-05 BC' or '10000-01-01 00:00:00'.
UNSUPPORTED_TIMES = {
    900001: ("now", "infinity"),
    900002: ("now", "-infinity"),
    900003: ("2026-01-05 BC", "now"),
    900004: ("now", "10000-01-01 00:00:00"),
    900005: ("infinity", "now"),
    900006: ("now", "0044-03-15 10:00:00 BC"),
}


def _readable(uri: str) -> int:
    """Rows of the Delta table at ``uri`` as pyarrow and DuckDB read them (every value)."""
    from assets_project.lib.lake import lake_connection, register_delta

    table = DeltaTable(uri)
    rows = table.to_pyarrow_table().num_rows
    with lake_connection() as connection:
        register_delta(connection, "t", table)
        assert len(connection.sql("SELECT * FROM t").fetchall()) == rows
    return rows


@pytest.mark.parametrize("column_type", ["timestamp", "timestamptz"])
def test_infinite_bc_and_far_future_times_are_dead_letters_and_runs_keep_flowing(
    postgres_url: str, layout: LakeLayout, column_type: str
) -> None:
    """'infinity' is PostgreSQL's usual "never": it must not become the watermark, break the
    snapshot query or the lake; its row is a dead letter and later runs go on."""
    loaded = init_orders(postgres_url, size=2000, seed=11, defects=0.0)
    with psycopg.connect(postgres_url) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        if column_type == "timestamptz":
            connection.execute(
                "ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz, "
                "ALTER COLUMN updated_at TYPE timestamptz"
            )
        for order_id, (created, updated) in UNSUPPORTED_TIMES.items():
            connection.execute(
                "INSERT INTO orders VALUES (%s, 1, 1, 1, 9.99, 'paid', %s, %s)",
                [order_id, created, updated],
            )
        finite = "SELECT max(updated_at) FROM orders WHERE order_id NOT IN (900001, 900004)"
        (newest,) = connection.execute(finite).fetchone() or (None,)
    assert newest is not None
    newest = newest.astimezone(UTC).replace(tzinfo=None) if newest.tzinfo else newest

    first = _extract(postgres_url, layout, "b1")
    assert first.rows_in == loaded + len(UNSUPPORTED_TIMES)
    assert (first.rows_written, first.rows_rejected) == (loaded, len(UNSUPPORTED_TIMES))
    assert first.watermark == newest
    assert read_watermarks(layout, ORDERS) == Watermarks(raw=newest, dead_letter=newest)
    letters = {int(r["order_id"]): r for r in dead_letter(layout)}
    assert sorted(letters) == sorted(UNSUPPORTED_TIMES)
    for order_id, (created, _) in UNSUPPORTED_TIMES.items():
        column = "updated_at" if created == "now" else "created_at"
        assert letters[order_id]["_reason"].startswith(f"{column}: {OUT_OF_RANGE} (got '")
    assert letters[900001]["updated_at"] == "infinity"
    assert _readable(layout.raw_uri("orders")) == loaded
    assert _readable(layout.dlq_uri("orders")) == len(UNSUPPORTED_TIMES)

    with psycopg.connect(postgres_url) as connection:
        connection.execute(
            "INSERT INTO orders VALUES (900100, 1, 1, 2, 5.00, 'paid', now(), now())"
        )
    second = _extract(postgres_url, layout, "b2")
    assert second.mode == "merge"
    assert second.rows_written == 1
    assert second.watermark is not None and second.watermark > newest
    # Read again and already in the dead-letter table: the rows stamped infinity and year
    # 10000 (after any watermark) and the two updated now (inside the overlap).
    assert second.rejects_already_in_dead_letter == 4
    assert second.rows_rejected == 4
    assert 900100 in {row[0] for row in lake_orders(layout)}
    assert sorted(int(r["order_id"]) for r in dead_letter(layout)) == sorted(UNSUPPORTED_TIMES)
    assert _readable(layout.raw_uri("orders")) == loaded + 1


@pytest.mark.parametrize(
    ("ddl", "enforced"),
    [
        ("order_id bigint PRIMARY KEY, v text", True),
        ("order_id bigint NOT NULL UNIQUE, v text", True),
        ("order_id bigint NOT NULL, v text", False),  # no constraint: a key may repeat
        ("order_id bigint UNIQUE, v text", False),  # NULLs repeat under a unique index
        ("order_id bigint NOT NULL, v text NOT NULL, UNIQUE (order_id, v)", False),  # wider
    ],
)
def test_the_key_counts_as_enforced_only_when_postgres_guarantees_it(
    postgres_url: str, ddl: str, enforced: bool
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA shop")
        connection.execute(f"CREATE TABLE shop.orders ({ddl})")
        assert key_enforced(connection, _contract_of("shop", "orders")) is enforced
        # The same name in another schema does not count.
        assert key_enforced(connection, _contract_of("public", "orders")) is False


def test_a_partial_or_expression_unique_index_does_not_enforce_the_key(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (order_id bigint NOT NULL, v text)")
        connection.execute("CREATE UNIQUE INDEX part ON orders (order_id) WHERE v <> 'x'")
        connection.execute("CREATE UNIQUE INDEX expr ON orders ((order_id + 1))")
        assert key_enforced(connection, ORDERS) is False
        connection.execute("CREATE UNIQUE INDEX whole ON orders (order_id)")
        assert key_enforced(connection, ORDERS) is True


def test_an_enforced_key_skips_the_reduction_to_one_row_per_key(
    postgres_url: str, lake_layout: LakeLayout
) -> None:
    init_orders(postgres_url, size=500, seed=4, defects=0.0)
    assert _extract(postgres_url, lake_layout, "b1").deduplicated is False
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
    simulate_traffic(postgres_url, inserts=5, updates=5, seed=1)
    assert _extract(postgres_url, lake_layout, "b2").deduplicated is True
    assert_lake_equals_source(postgres_url, lake_layout)


def _contract_of(schema: str, table: str):
    assert ORDERS.postgres is not None
    source = ORDERS.postgres.model_copy(update={"schema_name": schema, "table": table})
    return ORDERS.model_copy(update={"postgres": source})
