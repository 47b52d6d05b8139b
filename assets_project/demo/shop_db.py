"""The demo's operational shop database: the ``orders`` table in PostgreSQL, with live traffic.

``init_orders`` creates the table (and its index on ``updated_at``) where the orders contract
says it lives and bulk-loads an initial set with ``COPY … FROM STDIN``. ``simulate_traffic``
then behaves like the shop: new orders, in-place updates of status and quantity that bump
``updated_at``, and long transactions whose rows commit after rows with a newer
``updated_at`` (``now()`` is the start time of the transaction, as in most applications).
A small share of rows breaks the contract (a quantity of 0, an unknown status) so that the
dead-letter path is exercised. All values are bound as parameters; identifiers come from the
contract through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from assets_project.demo.generate import STATUSES, Scale
from assets_project.demo.generate.formatting import _money
from assets_project.lib.contracts import Contract, load_contract
from assets_project.lib.postgres import connect

_COPY_CHUNK_ROWS = 100_000
_BAD_STATUS = "lost"  # not in the contract's enum


def _table(contract: Contract) -> sql.Identifier:
    assert contract.postgres is not None
    return sql.Identifier(contract.postgres.schema_name, contract.postgres.table)


def create_orders_table(connection: psycopg.Connection, contract: Contract) -> None:
    """Create the orders table and its ``updated_at`` index unless they exist."""
    assert contract.postgres is not None
    connection.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {table} ("
            "order_id bigint PRIMARY KEY, user_id bigint NOT NULL, product_id bigint NOT NULL, "
            "quantity integer NOT NULL, unit_price numeric(12,2) NOT NULL, status text NOT NULL, "
            "created_at timestamp NOT NULL, updated_at timestamp NOT NULL DEFAULT now())"
        ).format(table=_table(contract))
    )
    connection.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})").format(
            index=sql.Identifier(f"{contract.postgres.table}_updated_at_idx"),
            table=_table(contract),
            column=sql.Identifier(contract.update_time or "updated_at"),
        )
    )


@dataclass(frozen=True)
class _Orders:
    """Column arrays of generated orders."""

    user_id: np.ndarray
    product_id: np.ndarray
    quantity: np.ndarray
    unit_price_cents: np.ndarray
    status: list[str]


def _orders(rng: np.random.Generator, n: int, scale: Scale, defects: float) -> _Orders:
    quantity = np.minimum(rng.geometric(0.6, n), 10).astype(np.int64)
    status = [STATUSES[i] for i in rng.integers(0, len(STATUSES), n)]
    broken = np.flatnonzero(rng.random(n) < defects)
    for k, row in enumerate(broken):
        if k % 2:
            status[row] = _BAD_STATUS
        else:
            quantity[row] = 0
    return _Orders(
        user_id=rng.integers(1, scale.users + 1, n),
        product_id=rng.integers(1, scale.products + 1, n),
        quantity=quantity,
        unit_price_cents=rng.integers(199, 50_000, n),
        status=status,
    )


def init_orders(
    url: str,
    *,
    size: int,
    seed: int,
    defects: float = 0.002,
    replace: bool = False,
    contract: Contract | None = None,
) -> int:
    """Create the orders table and load the orders that go with ``size`` demo events.

    Users and products are numbered as in the demo file drops of the same ``size``. Orders
    were created over the 30 days before now and last updated up to a day after creation.
    Returns the number of orders loaded; refuses a non-empty table unless ``replace``.
    """
    contract = contract or load_contract("orders")
    scale = Scale.for_size(size)
    rng = np.random.default_rng([seed, 7])
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with connect(url) as connection:
        create_orders_table(connection, contract)
        if replace:
            connection.execute(sql.SQL("TRUNCATE {}").format(_table(contract)))
        count = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(_table(contract)))
        existing = (count.fetchone() or (0,))[0]
        if existing:
            raise ValueError(f"{_table(contract).as_string(connection)} already holds rows")
        columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in contract.columns)
        copy_sql = sql.SQL("COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)").format(
            table=_table(contract), columns=columns
        )
        with connection.cursor().copy(copy_sql) as copy:
            for start in range(0, scale.orders, _COPY_CHUNK_ROWS):
                n = min(_COPY_CHUNK_ROWS, scale.orders - start)
                copy.write(_csv_chunk(rng, start, n, scale, defects, now))
        connection.commit()
    return scale.orders


def _csv_chunk(
    rng: np.random.Generator, start: int, n: int, scale: Scale, defects: float, now: datetime
) -> bytes:
    orders = _orders(rng, n, scale, defects)
    created_s = rng.integers(0, 30 * 86_400, n)
    created = np.datetime64(now - timedelta(days=30), "s") + created_s.astype("timedelta64[s]")
    updated = created + rng.integers(0, 86_400, n).astype("timedelta64[s]")
    updated = np.minimum(updated, np.datetime64(now, "s"))
    table = pa.table(
        {
            "order_id": np.arange(start + 1, start + n + 1, dtype=np.int64),
            "user_id": orders.user_id,
            "product_id": orders.product_id,
            "quantity": orders.quantity,
            "unit_price": _money(orders.unit_price_cents),
            "status": orders.status,
            "created_at": pa.array(created, pa.timestamp("s")),
            "updated_at": pa.array(updated, pa.timestamp("s")),
        }
    )
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


@dataclass(frozen=True)
class Traffic:
    """What ``simulate_traffic`` changed."""

    inserted: tuple[int, ...]
    updated: tuple[int, ...]
    late: tuple[int, ...]
    """Orders written by the long transaction, which committed last with the oldest time."""


def simulate_traffic(
    url: str,
    *,
    inserts: int,
    updates: int,
    late: int = 0,
    seed: int = 0,
    size: int = 5000,
    defects: float = 0.0,
    contract: Contract | None = None,
) -> Traffic:
    """New orders, in-place updates, and a long transaction that commits last.

    The long transaction (``late`` new orders) starts first, so its ``now()`` and with it the
    rows' ``updated_at`` are older than those of the orders inserted and updated meanwhile,
    but it commits after them: an extraction that ran in between saw a newer ``updated_at``
    without these rows.
    """
    contract = contract or load_contract("orders")
    scale = Scale.for_size(size)
    rng = np.random.default_rng([seed, 11])
    table = _table(contract)
    with connect(url) as main, connect(url) as long_running:
        top = main.execute(sql.SQL("SELECT coalesce(max(order_id), 0) FROM {}").format(table))
        next_id = int((top.fetchone() or (0,))[0]) + 1
        main.commit()  # the main connection's next transaction starts after the long one
        late_ids = list(range(next_id, next_id + late))
        if late_ids:
            _insert(long_running, table, rng, late_ids, scale, defects)
            time.sleep(0.01)  # the other transactions start (and take their now()) later
        insert_ids = list(range(next_id + late, next_id + late + inserts))
        if insert_ids:
            _insert(main, table, rng, insert_ids, scale, defects)
            main.commit()
        existing = main.execute(  # orders of earlier rounds, not the ones just inserted
            sql.SQL(
                "SELECT order_id FROM {} WHERE order_id < %s ORDER BY random() LIMIT %s"
            ).format(table),
            [next_id, updates],
        ).fetchall()
        update_ids = sorted(int(row[0]) for row in existing)
        if update_ids:
            quantity = np.minimum(rng.geometric(0.5, len(update_ids)), 10)
            statuses = [STATUSES[i] for i in rng.integers(1, len(STATUSES), len(update_ids))]
            main.execute(
                sql.SQL(
                    "UPDATE {table} AS t SET status = v.status, quantity = v.quantity, "
                    "updated_at = now() FROM unnest(%s::bigint[], %s::text[], %s::int[]) "
                    "AS v(order_id, status, quantity) WHERE t.order_id = v.order_id"
                ).format(table=table),
                [update_ids, statuses, [int(q) for q in quantity]],
            )
            main.commit()
        long_running.commit()
    return Traffic(tuple(insert_ids), tuple(update_ids), tuple(late_ids))


def _insert(
    connection: psycopg.Connection,
    table: sql.Identifier,
    rng: np.random.Generator,
    ids: list[int],
    scale: Scale,
    defects: float,
) -> None:
    orders = _orders(rng, len(ids), scale, defects)
    connection.execute(
        sql.SQL(
            "INSERT INTO {table} (order_id, user_id, product_id, quantity, unit_price, status, "
            "created_at, updated_at) SELECT v.*, now(), now() FROM unnest(%s::bigint[], "
            "%s::bigint[], %s::bigint[], %s::int[], %s::numeric[], %s::text[]) AS v"
        ).format(table=table),
        [
            ids,
            [int(x) for x in orders.user_id],
            [int(x) for x in orders.product_id],
            [int(x) for x in orders.quantity],
            [Decimal(int(c)).scaleb(-2) for c in orders.unit_price_cents],
            orders.status,
        ],
    )
