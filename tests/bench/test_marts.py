"""The end-to-end baselines compute the pipeline's marts, and the comparison notices a change."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets_project.demo.generate import SOURCES, generate
from bench.marts import MART_COLUMNS, compare_dirs, compare_marts, run_floor, run_pandas
from tests.e2e.pipeline import lake_in, materialize_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generate drops, run the pipeline on a copy of them, and both baselines on the original."""
    root = tmp_path_factory.mktemp("bench")
    pristine = root / "pristine"
    data = root / "data"
    generate(pristine, size=6000, seed=11, files=3)
    for source in SOURCES:  # the pipeline moves ingested files out of landing
        shutil.copytree(pristine / source, data / "landing" / source)
    lake = lake_in(data)
    materialize_all(lake, dg.DagsterInstance.ephemeral())
    run_floor(pristine, root / "floor")
    run_pandas(pristine, root / "pandas")
    return {
        "warehouse": Path(lake.warehouse_path),
        "floor": root / "floor",
        "pandas": root / "pandas",
        "root": root,
    }


def test_the_marts_are_not_trivial(runs: dict[str, Path]) -> None:
    with duckdb.connect(str(runs["warehouse"]), read_only=True) as connection:
        for mart in MART_COLUMNS:
            assert connection.sql(f"select count(*) from main.{mart}").fetchall()[0][0] > 0, mart
        ((purchases, revenue),) = connection.sql(
            "select sum(purchase_count), sum(total_revenue) from main.fct_user_daily_activity"
        ).fetchall()
        assert purchases > 0
        assert revenue > 0


def test_the_floor_gives_the_pipeline_marts(runs: dict[str, Path]) -> None:
    assert compare_marts(runs["warehouse"], runs["floor"]) == {}


def test_the_pandas_way_gives_the_pipeline_marts(runs: dict[str, Path]) -> None:
    assert compare_marts(runs["warehouse"], runs["pandas"]) == {}
    assert compare_dirs(runs["floor"], runs["pandas"]) == {}


def test_a_changed_mart_is_reported(runs: dict[str, Path], tmp_path: Path) -> None:
    altered = tmp_path / "altered"
    shutil.copytree(runs["floor"], altered)
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        # One row less in fct_orders, one value changed in dim_users.
        connection.execute(
            f"COPY (SELECT * FROM '{runs['floor']}/fct_orders.parquet' "
            "WHERE order_id <> (SELECT min(order_id) FROM "
            f"'{runs['floor']}/fct_orders.parquet')) TO '{altered}/fct_orders.parquet'"
        )
        connection.execute(
            f"COPY (SELECT * REPLACE (CASE WHEN user_id = (SELECT min(user_id) FROM "
            f"'{runs['floor']}/dim_users.parquet') THEN 'gold' ELSE user_tier END AS user_tier) "
            f"FROM '{runs['floor']}/dim_users.parquet') TO '{altered}/dim_users.parquet'"
        )
    (altered / "agg_events_per_minute.parquet").unlink()

    differences = compare_marts(runs["warehouse"], altered)

    assert set(differences) == {"fct_orders", "dim_users", "agg_events_per_minute"}
    assert "1 rows only in ours, 0 only in altered" in differences["fct_orders"]
    assert "1 rows only in ours, 1 only in altered" in differences["dim_users"]
    assert "user_tier=gold" in differences["dim_users"]
    assert "cannot compare" in differences["agg_events_per_minute"]
    assert compare_dirs(runs["floor"], altered).keys() == differences.keys()
