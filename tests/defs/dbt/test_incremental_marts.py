"""An incremental build of fct_user_daily_activity gives the rows of a full refresh.

Real ingestion and real dbt on DuckDB (issue 15, item 1): customers and events land as file
drops and the mart is built; then new events, late events, a corrected version of an event
that moves it to another customer and day (its old group loses its only event), a duplicate
and a customer's new tier land, and the mart is built incrementally. It must hold exactly the
rows a full refresh of it gives, and have rewritten only the groups that changed (the test marks every row before the
incremental build; a rewritten row loses the mark). A raw batch committed out of order (ingested
long before batches already staged) is still read; a build with nothing new changes nothing.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from deltalake import write_deltalake

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.resources import LakeResource
from assets_project.lib.lake import delta_table
from tests.e2e.pipeline import FILES_ONLY, RAW_ASSETS, pipeline_resources

pytestmark = pytest.mark.slow

MART = "fct_user_daily_activity"
SELECTION = [
    "raw/users",
    "raw/user_events",
    "stg_users",
    "dim_users",
    "stg_user_events",
    MART,
]
REPO = Path(__file__).resolve().parents[3]
LOOKBACK_DAYS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"][
    "events_lookback_days"
]
MARK = 1000  # added to every row's distinct_event_types between the builds
USERS_HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at"
THREE_USERS = (
    f"{USERS_HEADER}\n"
    "1,a@example.com,2026-01-01,free,europe,2026-01-01T00:00:00\n"
    "2,b@example.com,2026-01-02,basic,asia_pacific,2026-01-02T00:00:00\n"
    "3,c@example.com,2026-01-03,premium,north_america,2026-01-03T00:00:00\n"
)


def _land(lake_dir: Path, source: str, name: str, text: str) -> None:
    path = lake_dir / "landing" / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _events(*events: tuple[str, int, str, str]) -> str:
    """JSON lines, one per (name, user_id, event_type, event_timestamp); the event_id is a
    UUID derived from the name."""
    lines = []
    for name, user_id, event_type, at in events:
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        properties: dict[str, object] = {"page": "/"}
        if event_type == "purchase":
            properties["amount"] = 12.5
        lines.append(
            json.dumps(
                {
                    "event_id": event_id,
                    "user_id": user_id,
                    "event_type": event_type,
                    "event_timestamp": at,
                    "properties": properties,
                }
            )
        )
    return "\n".join(lines) + "\n"


def _land_events(lake_dir: Path, name: str, *events: tuple[str, int, str, str]) -> None:
    """Drop ``events`` (see ``_events``) as the JSON-lines file ``name``."""
    _land(lake_dir, "user_events", name, _events(*events))


def _build(
    lake: LakeResource,
    instance: dg.DagsterInstance,
    selection: list[str] = SELECTION,
    *,
    full_refresh: bool = False,
) -> None:
    """Materialize ``selection`` (by default the activity mart with all it depends on)."""
    ops: dict[str, object] = {shop_dbt_models.op.name: {"config": {"full_refresh": full_refresh}}}
    if "raw/user_events" in selection:
        ops.update(FILES_ONLY["ops"])
    result = dg.materialize(
        [*RAW_ASSETS, shop_dbt_models],
        selection=selection,
        resources=pipeline_resources(lake),
        instance=instance,
        run_config={"ops": ops},
    )
    assert result.success


def _mart(lake: LakeResource) -> list[tuple[object, ...]]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        return connection.sql(
            f"select * from main.{MART} order by user_id, activity_date"
        ).fetchall()


def _append_out_of_order(lake: LakeResource, name: str, *, user_id: int, at: datetime) -> None:
    """Commit one click to raw.user_events as a batch ingested before every other one, by
    lookback days (as a long ingestion run that commits late would)."""
    uri = f"{lake.lake_uri}/raw/user_events"
    table = delta_table(uri)
    current = table.to_pyarrow_table()
    oldest = pc.min(current["_extracted_at"]).as_py()
    (template,) = current.slice(0, 1).to_pylist()
    row = {
        **template,
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "user_id": user_id,
        "event_type": "click",
        "event_timestamp": at,
        "properties": '{"page": "/"}',
        "amount": None,
        "_source": f"{name}.jsonl",
        "_source_line": 1,
        "_batch_id": str(uuid.uuid4()),
        "_extracted_at": oldest - timedelta(days=LOOKBACK_DAYS + 7),
        "_partition_date": at.date(),
    }
    write_deltalake(uri, pa.Table.from_pylist([row], schema=current.schema), mode="append")


def _mark_every_row(lake: LakeResource, add: int) -> None:
    """Shift distinct_event_types by ``add`` in every row whose value is above ``-add``: a
    row an incremental build rewrites loses the mark."""
    with duckdb.connect(lake.warehouse_path) as connection:
        connection.execute(
            f"update main.{MART} set distinct_event_types = distinct_event_types + $add "
            "where distinct_event_types > -$add",
            {"add": add},
        )


def test_an_incremental_build_equals_a_full_refresh(lake: LakeResource) -> None:
    lake_dir = Path(lake.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    _land(lake_dir, "users", "users_1.csv", THREE_USERS)
    _land_events(
        lake_dir,
        "events_1.jsonl",
        ("e1", 1, "click", "2026-03-10T08:00:00Z"),
        ("e2", 1, "purchase", "2026-03-10T09:00:00Z"),
        ("e3", 1, "click", "2026-03-11T08:00:00Z"),
        ("e4", 2, "click", "2026-03-10T10:00:00Z"),
        ("e5", 2, "page_view", "2026-03-12T10:00:00Z"),  # alone in (2, 03-12)
        ("e6", 3, "click", "2026-03-12T11:00:00Z"),
    )
    _build(lake, instance)
    first = _mart(lake)
    assert len(first) == 5
    _mark_every_row(lake, MARK)

    # A second drop: new and late events, two corrected events (one leaves its group
    # empty), a copy of an event; and user 2 moves to another tier.
    _land(
        lake_dir,
        "users",
        "users_2.csv",
        f"{USERS_HEADER}\n2,b@example.com,2026-01-02,enterprise,europe,2026-03-01T00:00:00\n",
    )
    _land_events(
        lake_dir,
        "events_2.jsonl",
        ("e7", 3, "purchase", "2026-03-13T12:00:00Z"),  # new day of user 3
        ("e8", 1, "purchase", "2026-03-01T12:00:00Z"),  # late: a day long gone
        ("e5", 3, "click", "2026-03-13T13:00:00Z"),  # corrected: (2, 03-12) is left empty
        ("e2", 1, "purchase", "2026-03-11T09:00:00Z"),  # corrected: (1, 03-10) keeps e1
        ("e6", 3, "click", "2026-03-12T11:00:00Z"),  # a copy, ingested later: the newest
    )
    _build(lake, instance)
    rewritten = {(row[0], row[1]) for row in _mart(lake) if row[3] < MARK}
    _mark_every_row(lake, -MARK)
    built = _mart(lake)
    keys = {(row[0], row[1]) for row in built}
    assert (2, date(2026, 3, 12)) not in keys  # the corrected event's old group is gone
    assert (3, date(2026, 3, 13)) in keys and (1, date(2026, 3, 1)) in keys
    user_2 = [row for row in built if row[0] == 2]
    assert user_2 and all(row[6] == "enterprise" for row in user_2)
    # Rewritten: the groups of new events and copies, both groups of each corrected event,
    # every group of user 2 (its tier changed); nothing else.
    assert rewritten == {
        (3, date(2026, 3, 13)),
        (1, date(2026, 3, 1)),
        (1, date(2026, 3, 10)),
        (1, date(2026, 3, 11)),
        (3, date(2026, 3, 12)),
        (2, date(2026, 3, 10)),
    }
    purchases = {(row[0], row[1]): row[4] for row in built}
    assert purchases[(1, date(2026, 3, 10))] == 0 and purchases[(1, date(2026, 3, 11))] == 1

    # A batch whose commit finished after later batches were staged, ingested (by its
    # _extracted_at) long before them, beyond events_lookback_days: still read once.
    _append_out_of_order(lake, "e9", user_id=1, at=datetime(2026, 3, 20, 10, 0))
    _build(lake, instance)
    late = {(row[0], row[1]): row[2] for row in _mart(lake)}
    assert late[(1, date(2026, 3, 20))] == 1
    # Nothing new: the build reads no raw batch and changes nothing.
    again = _mart(lake)
    _build(lake, instance)
    assert _mart(lake) == again

    _build(lake, instance, [MART], full_refresh=True)
    assert _mart(lake) == again


ORDER_MARTS = ["stg_orders", "fct_orders", "fct_daily_revenue"]
ORDERS_SELECTION = [
    "raw/users",
    "raw/products",
    "raw/orders",
    "stg_users",
    "dim_users",
    "stg_products",
    "dim_products",
    *ORDER_MARTS,
]
ORDERS_HEADER = "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at"
PRODUCTS_HEADER = "product_id,name,category,unit_price,updated_at"
# What a build writes besides the data: when stg_orders staged a row, when a mart wrote it.
STAMPS = {"_staged_at", "last_staged_at", "last_built_at"}
TICK = timedelta(microseconds=1)


def _rows(
    lake: LakeResource, model: str, order_by: str, *, without: frozenset[str] = frozenset()
) -> list[dict[str, object]]:
    """The rows of ``model`` without the build stamps (and the columns ``without``)."""
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        relation = connection.sql(f"select * from main.{model} order by {order_by}")
        names = [c for c in relation.columns if c not in STAMPS | without]
        return [dict(zip(names, row, strict=True)) for row in relation.select(*names).fetchall()]


def _orders(*rows: str) -> str:
    return "\n".join([ORDERS_HEADER, *rows]) + "\n"


def test_incremental_order_marts_equal_a_full_refresh(lake: LakeResource) -> None:
    lake_dir = Path(lake.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    _land(lake_dir, "users", "users_1.csv", THREE_USERS)
    _land(
        lake_dir,
        "products",
        "products_1.csv",
        f"{PRODUCTS_HEADER}\n"
        "1,Lamp,home,20.00,2026-01-01T00:00:00\n"
        "2,Novel,books,10.00,2026-01-01T00:00:00\n",
    )
    _land(
        lake_dir,
        "orders",
        "orders_1.csv",
        _orders(
            "1,1,1,1,20.00,paid,2026-03-01 10:00:00,2026-03-01 10:00:00",
            "2,1,2,2,10.00,pending,2026-03-01 11:00:00,2026-03-01 11:00:00",
            "3,2,1,1,20.00,shipped,2026-03-02 10:00:00,2026-03-02 12:00:00",  # alone on 03-02
            "4,3,2,1,10.00,cancelled,2026-03-03 10:00:00,2026-03-03 10:00:00",
            "6,3,1,3,20.00,delivered,2026-03-06 10:00:00,2026-03-07 10:00:00",
            "7,2,1,1,20.00,paid,2026-03-07 10:00:00,2026-03-07 10:00:00",  # never touched
        ),
    )
    _build(lake, instance, ORDERS_SELECTION)
    first_revenue = _rows(lake, "fct_daily_revenue", "revenue_date, geographic_region")
    assert [(r["revenue_date"], r["geographic_region"]) for r in first_revenue] == [
        (date(2026, 3, 1), "europe"),
        (date(2026, 3, 2), "asia_pacific"),
        (date(2026, 3, 6), "north_america"),
        (date(2026, 3, 7), "asia_pacific"),
    ]
    with duckdb.connect(lake.warehouse_path) as connection:
        (built,) = connection.execute("select max(last_built_at) from main.fct_orders").fetchone()
        # Mark every revenue row a microsecond later (the watermark stays below the next
        # build's rows, and the totals the dbt tests reconcile stay): a row the incremental
        # build rewrites loses the mark.
        connection.execute(
            "update main.fct_daily_revenue set last_built_at = $marked", {"marked": built + TICK}
        )

    # A second drop: order 2 is paid now, order 3's created_at is corrected to another day
    # (03-02 is left without revenue), order 5 is new, order 1 lands again (a copy); user 3
    # moves to another region and product 2 to another category.
    _land(
        lake_dir,
        "users",
        "users_2.csv",
        f"{USERS_HEADER}\n3,c@example.com,2026-01-03,premium,europe,2026-03-10T00:00:00\n",
    )
    _land(
        lake_dir,
        "products",
        "products_2.csv",
        f"{PRODUCTS_HEADER}\n2,Novel,toys,10.00,2026-03-10T00:00:00\n",
    )
    _land(
        lake_dir,
        "orders",
        "orders_2.csv",
        _orders(
            "2,1,2,2,10.00,paid,2026-03-01 11:00:00,2026-03-08 09:00:00",
            "3,2,1,1,20.00,shipped,2026-03-05 10:00:00,2026-03-08 10:00:00",
            "5,2,2,4,10.00,paid,2026-03-04 10:00:00,2026-03-04 10:00:00",
            "1,1,1,1,20.00,paid,2026-03-01 10:00:00,2026-03-01 10:00:00",
        ),
    )
    _build(lake, instance, ORDERS_SELECTION)
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        rewritten_orders = {
            row[0]
            for row in connection.execute(
                "select order_id from main.fct_orders where last_built_at > $built",
                {"built": built},
            ).fetchall()
        }
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        rewritten_days = set(
            connection.execute(
                "select revenue_date, geographic_region from main.fct_daily_revenue "
                "where last_built_at <> $marked",
                {"marked": built + TICK},
            ).fetchall()
        )
    revenue = _rows(lake, "fct_daily_revenue", "revenue_date, geographic_region")
    orders = _rows(lake, "fct_orders", "order_id")

    # Rebuilt: the new and changed orders, the copy, every order of user 3 and product 2.
    assert rewritten_orders == {1, 2, 3, 4, 5, 6}
    # Recomputed: every day those orders are on, and the day order 3 left.
    assert rewritten_days == {
        (date(2026, 3, 1), "europe"),
        (date(2026, 3, 4), "asia_pacific"),
        (date(2026, 3, 5), "asia_pacific"),
        (date(2026, 3, 6), "europe"),
    }
    days = {(r["revenue_date"], r["geographic_region"]): r for r in revenue}
    assert (date(2026, 3, 2), "asia_pacific") not in days  # its only revenue order moved
    assert (date(2026, 3, 6), "north_america") not in days  # its customer moved
    assert days[(date(2026, 3, 1), "europe")]["order_count"] == 2
    assert {o["order_id"]: o["category"] for o in orders}[4] == "toys"

    _build(lake, instance, ORDERS_SELECTION)  # nothing new: nothing changes
    assert _rows(lake, "fct_orders", "order_id") == orders
    assert _rows(lake, "fct_daily_revenue", "revenue_date, geographic_region") == revenue

    # A full refresh forgets the replaced versions' days (it has replaced nothing).
    history = frozenset({"_replaced_order_dates"})
    staged = _rows(lake, "stg_orders", "order_id", without=history)
    _build(lake, instance, ORDER_MARTS, full_refresh=True)
    assert _rows(lake, "stg_orders", "order_id", without=history) == staged
    assert _rows(lake, "fct_orders", "order_id") == orders
    assert _rows(lake, "fct_daily_revenue", "revenue_date, geographic_region") == revenue


def test_a_mart_first_built_empty_takes_the_rows_of_later_builds(lake: LakeResource) -> None:
    """An empty mart has no watermark: the next build takes every staged row (a watermark of
    NULL would select none, and the mart would stay empty until a full refresh)."""
    lake_dir = Path(lake.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    _land(
        lake_dir,
        "users",
        "users_1.csv",
        f"{USERS_HEADER}\n1,a@example.com,2026-01-01,free,europe,2026-01-01T00:00:00\n",
    )
    # Every event of the first drop breaks the contract: raw.user_events exists but is empty.
    _land(
        lake_dir,
        "user_events",
        "events_1.jsonl",
        _events(("bad", 1, "teleport", "2026-03-10T08:00:00Z")),
    )
    _build(lake, instance)
    assert _mart(lake) == []

    _land(
        lake_dir,
        "user_events",
        "events_2.jsonl",
        _events(("e1", 1, "click", "2026-03-10T08:00:00Z")),
    )
    _build(lake, instance)
    assert [(row[0], row[1], row[2]) for row in _mart(lake)] == [(1, date(2026, 3, 10), 1)]


AGG = "agg_events_per_minute"
AGG_SELECTION = ["raw/user_events", "stg_user_events", AGG]
#: The windows a full refresh gives, computed from stg_user_events independently of the model.
AGG_FROM_STAGING = """
    select
        date_trunc('minute', event_timestamp) as window_start,
        event_type,
        count(*)                              as event_count,
        count(distinct user_id)               as distinct_users,
        coalesce(sum(amount), 0)::decimal(18, 2) as amount_total
    from main.stg_user_events
    group by all
    order by window_start, event_type
"""


def _agg(lake: LakeResource) -> list[tuple[object, ...]]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        return connection.sql(
            f"select window_start, event_type, event_count, distinct_users, amount_total "
            f"from main.{AGG} order by window_start, event_type"
        ).fetchall()


def _agg_from_staging(lake: LakeResource) -> list[tuple[object, ...]]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        return connection.sql(AGG_FROM_STAGING).fetchall()


def test_incremental_agg_events_per_minute_equals_a_full_refresh(lake: LakeResource) -> None:
    """New, late and corrected events, a copy, a batch committed out of order and a build with
    nothing new: after each incremental build the windows are those of a full refresh.

    A corrected event that moves to another window (or type) leaves its old window with one
    event less, or none: that window is recomputed or deleted, not kept with a stale count.
    """
    lake_dir = Path(lake.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    _land_events(
        lake_dir,
        "events_1.jsonl",
        ("e1", 1, "click", "2026-03-10T08:00:00Z"),
        ("e2", 1, "purchase", "2026-03-10T08:00:30Z"),
        ("e3", 2, "purchase", "2026-03-10T08:00:40Z"),
        ("e4", 2, "page_view", "2026-03-11T10:00:00Z"),  # alone in its window
        ("e5", 3, "click", "2026-03-12T11:00:00Z"),
    )
    _build(lake, instance, AGG_SELECTION)
    assert _agg(lake) == _agg_from_staging(lake)
    assert len(_agg(lake)) == 4

    _land_events(
        lake_dir,
        "events_2.jsonl",
        ("e6", 3, "click", "2026-03-13T12:00:00Z"),  # new
        ("e7", 1, "click", "2026-03-10T08:00:10Z"),  # late, into an open window
        ("e4", 2, "click", "2026-03-13T12:00:05Z"),  # corrected: its old window empties
        ("e3", 2, "purchase", "2026-03-12T09:00:00Z"),  # corrected: leaves (08:00, purchase)
        ("e5", 3, "click", "2026-03-12T11:00:00Z"),  # a copy, ingested later
    )
    _build(lake, instance, AGG_SELECTION)
    windows = _agg(lake)
    assert windows == _agg_from_staging(lake)
    assert (datetime(2026, 3, 11, 10, 0), "page_view") not in {(w[0], w[1]) for w in windows}

    # A batch whose commit finished after later batches were staged, ingested (by its
    # _extracted_at) long before them, beyond events_lookback_days: counted once.
    _append_out_of_order(lake, "e8", user_id=1, at=datetime(2026, 3, 12, 11, 0, 20))
    _build(lake, instance, AGG_SELECTION)
    assert _agg(lake) == _agg_from_staging(lake)

    again = _agg(lake)
    _build(lake, instance, AGG_SELECTION)
    assert _agg(lake) == again

    _build(lake, instance, [AGG], full_refresh=True)
    assert _agg(lake) == again


def test_a_table_an_upgrade_changed_is_rebuilt_before_the_incremental_run(
    lake: LakeResource,
) -> None:
    """A warehouse built by an earlier version (agg_events_per_minute without last_staged_at):
    dbt refuses the changed columns in an incremental run, so the table is rebuilt from all
    its input first, and the run succeeds with the windows of a full refresh."""
    lake_dir = Path(lake.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    _land_events(lake_dir, "events_1.jsonl", ("e1", 1, "click", "2026-03-10T08:00:00Z"))
    _build(lake, instance, AGG_SELECTION)
    with duckdb.connect(lake.warehouse_path) as connection:
        connection.execute(f"alter table main.{AGG} drop column last_staged_at")

    _land_events(lake_dir, "events_2.jsonl", ("e2", 2, "purchase", "2026-03-10T08:00:30Z"))
    _build(lake, instance, AGG_SELECTION)
    assert _agg(lake) == _agg_from_staging(lake)
    assert len(_agg(lake)) == 2
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        columns = {row[0] for row in connection.execute(f"describe main.{AGG}").fetchall()}
    assert "last_staged_at" in columns
