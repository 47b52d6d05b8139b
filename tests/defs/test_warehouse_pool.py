"""Every op that opens the DuckDB warehouse is in the one-slot warehouse pool (DuckDB admits one
process per file while it is written; many run workers at once must queue for it)."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from assets_project.definitions import defs
from assets_project.defs.sources import WAREHOUSE_POOL

REPO = Path(__file__).resolve().parents[2]


def _opens_the_warehouse(node: dg.OpDefinition) -> bool:
    """dbt (which holds the warehouse for the whole build) or code that connects to the file."""
    if "dbt" in node.required_resource_keys:
        return True
    function: Any = getattr(node.compute_fn, "decorated_fn", node.compute_fn)
    return "warehouse_path" in inspect.getsource(function)


def test_every_op_that_opens_the_warehouse_is_in_its_pool() -> None:
    graph = defs.resolve_asset_graph()
    nodes = {
        node.name: node
        for definition in graph.assets_defs
        if definition.is_executable and isinstance(definition.node_def, dg.OpDefinition)
        for node in [definition.node_def]
    }
    opening = {name: node for name, node in nodes.items() if _opens_the_warehouse(node)}
    # The dbt models and the marts' quality suites, at least.
    assert any("dbt" in node.required_resource_keys for node in opening.values())
    assert any(name.startswith("mart_suite") or "suite" in name for name in opening), opening
    outside = sorted(name for name, node in opening.items() if node.pool != WAREHOUSE_POOL)
    assert not outside, f"open the warehouse outside the {WAREHOUSE_POOL} pool: {outside}"
    inside = sorted(name for name, node in nodes.items() if node.pool == WAREHOUSE_POOL)
    assert inside == sorted(opening), "only warehouse ops hold its slot"


def test_the_warehouse_pool_has_one_slot(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert WAREHOUSE_POOL not in str(config["concurrency"]["pools"].get("limits", {}))
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
