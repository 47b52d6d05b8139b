"""The demo shop database: table, index, initial load and traffic, on a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from assets_project.demo.__main__ import main
from assets_project.demo.shop_db import init_orders, simulate_traffic
from tests.postgres_server import is_valid_order, source_orders


def test_init_creates_the_table_with_its_index_and_refuses_to_load_twice(
    postgres_url: str,
) -> None:
    assert init_orders(postgres_url, size=10_000, seed=1, defects=0.05) == 1000
    with psycopg.connect(postgres_url) as connection:
        indexes = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders'"
        ).fetchall()
    assert any("(updated_at)" in row[0] for row in indexes)
    orders = source_orders(postgres_url)
    assert sorted(orders) == list(range(1, 1001))
    invalid = [row for row in orders.values() if not is_valid_order(row)]
    assert 20 <= len(invalid) <= 90  # about 5 %
    with pytest.raises(ValueError, match="already holds rows"):
        init_orders(postgres_url, size=10_000, seed=1)
    assert init_orders(postgres_url, size=10_000, seed=2, replace=True) == 1000


def test_traffic_inserts_updates_and_commits_a_long_transaction_last(postgres_url: str) -> None:
    init_orders(postgres_url, size=5000, seed=1, defects=0.0)
    before = source_orders(postgres_url)
    traffic = simulate_traffic(postgres_url, inserts=5, updates=7, late=3, seed=4)
    after = source_orders(postgres_url)
    assert set(after) - set(before) == set(traffic.inserted) | set(traffic.late)
    for order in traffic.updated:
        assert after[order][7] > before[order][7]  # updated_at bumped
    late_time = max(after[o][7] for o in traffic.late)
    # The long transaction's rows carry an older updated_at than rows committed before it.
    assert late_time < min(after[o][7] for o in traffic.inserted)


def test_cli_needs_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["db-init"]) == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


def test_cli_loads_and_changes_the_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    assert main(["db-init", "--size", "2000"]) == 0
    assert main(["db-traffic", "--rounds", "2", "--every", "0", "--inserts", "3"]) == 0
    assert "round 2: 3 inserted" in capsys.readouterr().out
    assert len(source_orders(postgres_url)) == 200 + 2 * (3 + 2)
