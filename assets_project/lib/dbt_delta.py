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

import functools
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from dbt.adapters.duckdb.environments.local import LocalEnvironment
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable

from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import delta_dataset, raw_schema, storage_options
from assets_project.lib.timetravel import parse_as_of, version_at

_SOURCE_LOCK = threading.RLock()


def _under_source_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _SOURCE_LOCK:
            return method(*args, **kwargs)

    locked.__dict__["_assets_project_locked"] = True
    return locked


def serialize_source_loads() -> None:
    """Make dbt-duckdb 1.11's local environment safe for dbt's threads (``threads`` > 1).

    Every model that calls ``source()`` re-loads its plugin sources: ``load_source`` creates
    the source's schema, registers the Delta dataset under a name, adds it to the
    environment's dict of registered datasets and replaces the source's view. Two threads
    doing that at once conflict in DuckDB's catalog (write-write conflict on the schema or
    the view), and a thread opening a cursor (``handle``) iterates that dict while another
    adds to it ("dictionary changed size during iteration"). Loading a source only opens a
    Delta log, and opening a cursor only sets the profile's settings, so both run under one
    lock; the models' queries themselves run on the threads in parallel.
    """
    for name in ("load_source", "handle"):
        method = getattr(LocalEnvironment, name)
        if not getattr(method, "_assets_project_locked", False):
            setattr(LocalEnvironment, name, _under_source_lock(method))


# dbt-duckdb imports this module (the profile's plugin) when it creates the environment,
# before dbt starts its threads.
serialize_source_loads()


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
        return delta_dataset(table)
