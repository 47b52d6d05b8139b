"""The source registry: every contract and the asset key of its raw table.

The one module every ``defs/`` concern may import (with ``defs/ingestion/raw.py`` for the raw
assets' shared kit); the contracts themselves live in ``assets_project/contracts/``.
"""

import dagster as dg

from assets_project.lib.contracts import Contract, load_contract, source_names

CONTRACTS: tuple[Contract, ...] = tuple(load_contract(name) for name in source_names())


REPLAY_CHANNEL = "replay"
"""The ``channel`` of a dead-letter replay's materialization (the batch checks judge it apart)."""


def raw_asset_key(source: str) -> dg.AssetKey:
    """Key of the raw table of ``source``; dbt sources map onto these keys."""
    return dg.AssetKey(["raw", source])


def table_pool(source: str) -> str:
    """The Dagster pool of every op that writes ``source``'s raw or dead-letter Delta table:
    its raw asset (every channel, replay) and its lake maintenance. Pools have one slot
    (dagster.yaml), so maintenance never runs beside a writer of the same table."""
    return f"lake_{source}"


WAREHOUSE_POOL = "duckdb_warehouse"
"""The pool of every op that opens the DuckDB warehouse: dbt (which writes it) and the marts'
quality suites (which read it). One slot: DuckDB admits one writing process per file."""


def contracts_with(channel: str) -> tuple[Contract, ...]:
    """The contracts of the sources fed (also) by ``channel``: files, postgres or kafka."""
    return tuple(c for c in CONTRACTS if channel in c.channels)
