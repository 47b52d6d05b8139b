"""A real PostgreSQL server for the tests: the one in DATABASE_URL, or the machine's cluster.

Without DATABASE_URL the machine's PostgreSQL cluster (Debian's ``pg_ctlcluster``) is started
when it is down, and a login role of this test session's own (random name and password) is made, and dropped
at the end.
Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from assets_project.lib.contracts import load_contract
from tests.services.postgres_cluster import drop_role, start_local_cluster

_INSTALL = "apt-get install postgresql (then make test starts it), or set DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Connection string of a role that may create databases on a running server."""
    from tests.conftest import require_service

    url = os.environ.get("DATABASE_URL")
    why = ""
    made_role = not url
    if not url:
        url, why = start_local_cluster()
    if url:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            url, why = None, f"cannot connect: {exc}"
    require_service(url is not None, f"PostgreSQL ({why})", _INSTALL)
    assert url is not None
    try:
        yield url
    finally:
        if made_role:
            drop_role(url)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(postgres_server)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def source_orders(url: str) -> dict[int, tuple]:
    """Every order in the source table, by order_id, as (column values...)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT order_id, user_id, product_id, quantity, unit_price, status, created_at, "
            "updated_at FROM orders"
        ).fetchall()
    return {row[0]: tuple(row) for row in rows}


def is_valid_order(row: tuple) -> bool:
    """Whether an order satisfies the orders contract (the demo breaks quantity or status)."""
    _, _, _, quantity, unit_price, status, _, _ = row
    statuses = load_contract("orders").enum("status")
    return 1 <= quantity <= 1000 and 0 <= unit_price <= 100_000 and status in statuses
