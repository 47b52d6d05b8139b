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
import re
import threading
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
from dbt.adapters.duckdb.environments.local import LocalEnvironment
from dbt.adapters.duckdb.plugins import delta
from dbt.adapters.duckdb.utils import SourceConfig
from deltalake import DeltaTable

from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import delta_dataset, raw_schema, storage_options
from assets_project.lib.memory import use_returning_memory_pool
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


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def _reserved_words() -> frozenset[str]:
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
        ).fetchall()
    return frozenset(str(name).lower() for (name,) in rows)


def check_plain_names(source_config: SourceConfig) -> None:
    """Refuse, with the reason, a source whose view dbt-duckdb 1.11 cannot create.

    dbt-duckdb names a plugin source's view ``database.schema.identifier`` without quotes, and
    the database is the warehouse file's name: ``WAREHOUSE_PATH=data/shop-warehouse.duckdb``
    failed every model that reads the lake with "syntax error at or near "-"".
    """
    parts = (source_config.database, source_config.schema, source_config.identifier)
    odd = [
        part
        for part in parts
        if part is not None
        and (not _PLAIN_NAME.fullmatch(part) or part.lower() in _reserved_words())
    ]
    if odd:
        raise ValueError(
            f"dbt-duckdb cannot read the source {source_config.identifier!r}: it names the "
            f"source's view {'.'.join(p for p in parts if p)} without quotes, so {odd[0]!r} "
            "must be a plain name (letters, digits and _, not starting with a digit, not a "
            "reserved word such as select). The "
            "first part is the warehouse file's name: choose a WAREHOUSE_PATH such as "
            "data/shop_warehouse.duckdb."
        )


class Plugin(delta.Plugin):
    """dbt-duckdb's Delta plugin; a raw table not written yet reads as empty."""

    def initialize(self, config: dict[str, Any]) -> None:
        """The dbt process's Arrow scans of the lake allocate from a pool that gives freed
        memory back (``assets_project/lib/memory.py``)."""
        use_returning_memory_pool()
        super().initialize(config)

    def load(self, source_config: SourceConfig) -> Any:
        """The Delta table at ``delta_table_path``, or an empty table of the contract's schema."""
        check_plain_names(source_config)
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
