"""The dbt-duckdb plugin that reads the raw Delta tables (``meta.plugin: delta`` in the sources).

dbt-duckdb's own ``delta`` plugin fails on a table that does not exist yet. This one, named
``delta`` in ``dbt_project/profiles.yml``, reads a raw table that was never written as an empty
relation with the schema its contract gives it, so that dbt can build before every source has
been ingested, and writes nothing to the lake (read paths never write).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable

from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import raw_schema


class Plugin(delta.Plugin):
    """dbt-duckdb's Delta plugin; a raw table not written yet reads as empty."""

    def load(self, source_config: SourceConfig) -> Any:
        """The Delta table at ``delta_table_path``, or an empty table of the contract's schema."""
        path = source_config.get("delta_table_path")
        if path is None or DeltaTable.is_deltatable(path, source_config.get("storage_options")):
            return super().load(source_config)  # (which also says that the path is missing)
        return pa.Table.from_batches([], raw_schema(load_contract(source_config.identifier)))
