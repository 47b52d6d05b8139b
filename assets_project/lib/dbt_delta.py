"""The dbt-duckdb plugin that reads the raw Delta tables (``meta.plugin: delta`` in the sources).

dbt-duckdb's own ``delta`` plugin fails on a table that does not exist yet. This one, named
``delta`` in ``dbt_project/profiles.yml``, reads a raw table that was never written as an empty
relation with the schema its contract gives it, so that dbt can build before every source has
been ingested, and writes nothing to the lake (read paths never write).

``delta_table_path`` is a local path or an object-store URI (``LAKE_URI=s3://bucket/prefix``):
the table is opened with the lake's storage options (:func:`assets_project.lib.lake.
storage_options`) unless the source names its own; endpoint, region and credentials come from
the environment of the dbt process (``AWS_*``), never from the sources YAML.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable

from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import raw_schema, storage_options
from assets_project.lib.timetravel import parse_as_of, version_at


class Plugin(delta.Plugin):
    """dbt-duckdb's Delta plugin; a raw table not written yet reads as empty."""

    def load(self, source_config: SourceConfig) -> Any:
        """The Delta table at ``delta_table_path``, or an empty table of the contract's schema."""
        path = source_config.get("delta_table_path")
        if path is None:
            return super().load(source_config)  # (which says that the path is missing)
        options = source_config.get("storage_options") or storage_options(path)
        if not DeltaTable.is_deltatable(path, options):
            return pa.Table.from_batches([], raw_schema(load_contract(source_config.identifier)))
        table = DeltaTable(path, storage_options=options)
        if version := source_config.get("as_of_version"):
            table.load_as_version(int(version))
        if moment := source_config.get("as_of_datetime"):
            # By the commits' own timestamps: S3 keeps modification times to the second only.
            when = parse_as_of(str(moment))
            table.load_as_version(when if isinstance(when, int) else version_at(table, when))
        return table.to_pyarrow_dataset()
