"""The dbt-duckdb Delta plugin: a raw table not written yet reads as empty, and stays unwritten."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import write_deltalake

from assets_project.defs.dbt.resources import dbt_resource
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract
from assets_project.lib.dbt_delta import Plugin
from assets_project.lib.lake import (
    LakeLayout,
    is_delta_table,
    is_object_store,
    raw_schema,
    storage_options,
)


def _source(layout: LakeLayout, name: str, **pins: str) -> SourceConfig:
    return SourceConfig(
        name=name,
        identifier=name,
        schema="raw",
        database=None,
        meta={"plugin": "delta", "delta_table_path": layout.raw_uri(name), **pins},
        tags=[],
    )


def test_a_raw_table_not_written_yet_reads_as_empty_with_its_contract_schema(
    lake_layout: LakeLayout,
) -> None:
    table = Plugin("delta", {}).load(_source(lake_layout, "orders"))
    assert isinstance(table, pa.Table)
    assert table.num_rows == 0
    assert table.schema == raw_schema(load_contract("orders"))
    assert not (lake_layout.data_dir / "lake").exists()
    if is_object_store(lake_layout.lake_uri):
        assert not is_delta_table(lake_layout.raw_uri("orders"))


def test_a_written_table_is_read_from_the_lake_as_of_a_version_or_a_time(
    lake_layout: LakeLayout,
) -> None:
    uri = lake_layout.raw_uri("products")
    first = pa.table({"product_id": [1, 2]})
    write_deltalake(uri, first, storage_options=storage_options(uri))
    moment = datetime.now(UTC)
    write_deltalake(
        uri, pa.table({"product_id": [3]}), mode="append", storage_options=storage_options(uri)
    )
    plugin = Plugin("delta", {})
    assert plugin.load(_source(lake_layout, "products")).to_table().num_rows == 3
    pinned = plugin.load(_source(lake_layout, "products", as_of_version="0"))
    assert pinned.to_table() == first
    # Within the same second as the next commit: S3 keeps modification times to the second.
    at = plugin.load(_source(lake_layout, "products", as_of_datetime=moment.isoformat()))
    assert at.to_table() == first


@pytest.mark.slow
def test_dbt_builds_staging_on_a_lake_where_nothing_was_ingested(lake: LakeResource) -> None:
    with lake.dbt_environment():
        assert dbt_resource().cli(["build", "--select", "stg_products"]).is_successful()
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        assert connection.sql("select count(*) from main.stg_products").fetchall() == [(0,)]
    assert not Path(lake.lake_uri).exists()


def test_sources_load_safely_from_many_dbt_threads(layout: LakeLayout, tmp_path: Path) -> None:
    """With ``threads`` > 1, dbt's threads load sources and open cursors at the same time.

    Unserialized, dbt-duckdb 1.11 fails here: a cursor being opened iterates the registered
    datasets while another thread adds one, and two threads create the same schema or replace
    the same view at once (DuckDB catalog write-write conflicts).
    """
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from dbt.adapters.duckdb.credentials import DuckDBCredentials, PluginConfig
    from dbt.adapters.duckdb.environments.local import LocalEnvironment

    names = ["orders", "products", "users", "user_events"]
    for name in names:
        uri = layout.raw_uri(name)
        write_deltalake(uri, pa.table({"n": [1, 2, 3]}), storage_options=storage_options(uri))
    credentials = DuckDBCredentials(
        path=str(tmp_path / "warehouse.duckdb"),
        plugins=[PluginConfig(module="assets_project.lib.dbt_delta", alias="delta")],
    )
    environment = LocalEnvironment(credentials)
    threads = 8
    start = Barrier(threads)

    def work(thread: int) -> int:
        start.wait()
        for round_ in range(10):
            name = names[(thread + round_) % len(names)]
            # Distinct views too, so that the registered datasets keep growing.
            source = _source(layout, name)
            source.identifier = f"{name}_{thread}_{round_ % 3}"
            source.meta["delta_table_path"] = layout.raw_uri(name)
            environment.load_source("delta", source)
            handle = environment.handle()
            handle.cursor().execute(f"select count(*) from raw.{source.identifier}").fetchall()
            handle.close()
        return thread

    with ThreadPoolExecutor(threads) as pool:
        assert sorted(pool.map(work, range(threads))) == list(range(threads))
    handle = environment.handle()
    counts = handle.cursor().execute("select count(*) from raw.orders_0_0").fetchall()
    assert counts == [(3,)]
    handle.close()


@pytest.mark.parametrize("warehouse", ["shop-warehouse", "2026_warehouse", "select"])
def test_a_warehouse_name_dbt_duckdb_cannot_write_unquoted_is_refused_with_the_reason(
    layout: LakeLayout, tmp_path: Path, warehouse: str
) -> None:
    from dbt.adapters.duckdb.credentials import DuckDBCredentials, PluginConfig
    from dbt.adapters.duckdb.environments.local import LocalEnvironment

    plugins = [PluginConfig(module="assets_project.lib.dbt_delta", alias="delta")]
    for name, fails in ((warehouse, True), ("shop_warehouse", False)):
        credentials = DuckDBCredentials(path=str(tmp_path / f"{name}.duckdb"), plugins=plugins)
        environment = LocalEnvironment(credentials)
        source = _source(layout, "orders")
        source.database = name
        if fails:
            with pytest.raises(ValueError, match=f"'{name}' must be a plain name.*WAREHOUSE_PATH"):
                environment.load_source("delta", source)
        else:
            environment.load_source("delta", source)
            handle = environment.handle()
            assert handle.cursor().execute(
                f"select count(*) from {name}.raw.orders"
            ).fetchall() == [(0,)]
            handle.close()
