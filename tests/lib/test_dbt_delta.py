"""The dbt-duckdb Delta plugin: a raw table not written yet reads as empty, and stays unwritten."""

from __future__ import annotations

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
from assets_project.lib.lake import LakeLayout, raw_schema


def _source(layout: LakeLayout, name: str) -> SourceConfig:
    return SourceConfig(
        name=name,
        identifier=name,
        schema="raw",
        database=None,
        meta={"plugin": "delta", "delta_table_path": layout.raw_uri(name)},
        tags=[],
    )


def test_a_raw_table_not_written_yet_reads_as_empty_with_its_contract_schema(
    layout: LakeLayout,
) -> None:
    table = Plugin("delta", {}).load(_source(layout, "orders"))
    assert isinstance(table, pa.Table)
    assert table.num_rows == 0
    assert table.schema == raw_schema(load_contract("orders"))
    assert not Path(layout.lake_uri).exists()


def test_a_written_table_is_read_from_the_lake(layout: LakeLayout) -> None:
    written = pa.table({"product_id": [1, 2]})
    write_deltalake(layout.raw_uri("products"), written)
    read = Plugin("delta", {}).load(_source(layout, "products"))
    assert read.to_table() == written


@pytest.mark.slow
def test_dbt_builds_staging_on_a_lake_where_nothing_was_ingested(lake: LakeResource) -> None:
    with lake.dbt_environment():
        assert dbt_resource().cli(["build", "--select", "stg_products"]).is_successful()
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        assert connection.sql("select count(*) from main.stg_products").fetchall() == [(0,)]
    assert not Path(lake.lake_uri).exists()
