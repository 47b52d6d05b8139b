"""Structural rules of the dbt project that keep automation runs safe."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from assets_project.defs.dbt.project import dbt_project


def _manifest() -> Mapping[str, Any]:
    return json.loads(dbt_project.manifest_path.read_text())


def _ancestors(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    seen: set[str] = set()
    stack = [unique_id]
    while stack:
        for parent in manifest["parent_map"].get(stack.pop(), []):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _attached_model(manifest: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    if test.get("attached_node"):
        return test["attached_node"]
    ref = test["config"]["meta"]["dagster"]["ref"]["name"]
    return next(
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["name"] == ref
    )


def test_every_test_reads_only_its_model_and_the_models_upstream_of_it() -> None:
    """A partial (automation) run selects a model with its tests: a test that reads a model
    which is not upstream of the model it checks can find that relation missing."""
    manifest = _manifest()
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert tests
    for test in tests:
        model = _attached_model(manifest, test)
        allowed = _ancestors(manifest, model) | {model}
        reads = {d for d in test["depends_on"]["nodes"] if d.startswith("model.")}
        assert reads <= allowed, f"{test['name']} checks {model} but reads {reads - allowed}"


def test_every_model_and_column_is_described() -> None:
    manifest = _manifest()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        assert node["description"].strip(), node["name"]
        for column in node["columns"].values():
            assert column["description"].strip(), f"{node['name']}.{column['name']}"
