"""Every dbt model as a Dagster asset, every dbt test as an asset check."""

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from assets_project.defs.dbt.project import dbt_project
from assets_project.defs.dbt.translator import ShopDbtTranslator
from assets_project.defs.metadata import metadata_int, table_metadata
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import WAREHOUSE_POOL
from assets_project.lib.dbt_artifacts import prune_invocation_folders, target_root
from assets_project.lib.warehouse import TableFacts, table_facts

#: The WARN check (a dbt singular test) that counts the events agg_events_per_minute leaves
#: out of their windows; its failure count becomes the mart's ``late_events_ignored``.
LATE_EVENTS_CHECK = dg.AssetCheckKey(
    dg.AssetKey(["agg_events_per_minute"]), "assert_agg_events_per_minute_counts_every_event"
)


class DbtBuildConfig(dg.Config):
    """How the dbt build of the selected models runs."""

    full_refresh: bool = False
    """``dbt build --full-refresh``: rebuild the selected incremental models
    (``stg_user_events``, ``agg_events_per_minute``) from all their input instead of only new
    rows; late events in windows closed to them are counted again."""
    raw_as_of: str | None = None
    """Read every raw Delta table as it was at this ISO timestamp (dbt var ``raw_as_of``), to
    rebuild models against an earlier state of raw; unset: the newest state."""
    raw_versions: dict[str, int] | None = None
    """Read these raw tables at a Delta version, e.g. ``{"users": 12}`` (dbt var
    ``raw_versions``; ``python -m assets_project lake history users`` lists the versions)."""

    def dbt_args(self) -> list[str]:
        """``dbt build`` with the options this config asks for."""
        args = ["build", "--full-refresh"] if self.full_refresh else ["build"]
        return [*args, *self.pin_args()]

    def pin_args(self) -> list[str]:
        """The raw tables' pins as dbt vars (none: the newest state)."""
        pins: dict[str, object] = {}
        if self.raw_as_of:
            pins["raw_as_of"] = self.raw_as_of
        if self.raw_versions:
            pins["raw_versions"] = dict(self.raw_versions)
        return ["--vars", json.dumps(pins)] if pins else []


def _with_facts(context: dg.AssetExecutionContext, event: Any, facts: dict[str, TableFacts]) -> Any:
    """Attach row count and column schema (types from DuckDB, descriptions from dbt)."""
    if not isinstance(event, dg.Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    found = facts.get(key.path[-1])
    if found is None:
        return event
    declared = context.assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
    descriptions = {c.name: c.description for c in declared.columns} if declared else {}
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=data_type, description=descriptions.get(name))
            for name, data_type in found.columns
        ]
    )
    return event.with_metadata(
        {**event.metadata, **table_metadata(row_count=found.row_count, column_schema=schema)}
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=ShopDbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def shop_dbt_models(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    lake: LakeResource,
) -> Iterator[Any]:
    """Build the selected dbt models and run their tests against the DuckDB warehouse."""
    pruned = prune_invocation_folders(target_root(Path(dbt.project_dir)))
    if pruned:
        context.log.debug(f"removed {len(pruned)} target folders of earlier dbt invocations")
    changed = [] if config.full_refresh else _changed_incremental_models(context, lake)
    if changed:
        context.log.warning(
            f"Rebuilding {', '.join(changed)} from all their input first: the warehouse table's "
            "columns are not the model's (an upgrade changed them), which an incremental run "
            "cannot take."
        )
        with lake.dbt_environment():
            dbt.cli(["run", "--full-refresh", *config.pin_args(), "--select", *changed]).wait()
    with lake.dbt_environment():
        invocation = dbt.cli(config.dbt_args(), context=context)
    # Row counts and column types are read once dbt has released the warehouse file: DuckDB
    # admits no second process while dbt writes it, so events are held until dbt is done.
    events = list(invocation.stream())
    facts = table_facts(
        lake.layout.warehouse_path,
        {
            context.asset_key_for_output(e.output_name).path[-1]
            for e in events
            if isinstance(e, dg.Output)
        },
    )
    late = _late_events_ignored(events)
    for event in events:
        event = _with_facts(context, event, facts)
        if late is not None and _is_output_of(context, event, LATE_EVENTS_CHECK.asset_key):
            event = event.with_metadata({**event.metadata, "late_events_ignored": late})
        yield event


@cache
def _incremental_model_columns() -> dict[str, frozenset[str]]:
    """Each incremental dbt model's declared columns (every one declares all of its own)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        node["name"]: frozenset(name.lower() for name in node["columns"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["config"].get("materialized") == "incremental"
        and node["columns"]
    }


def _changed_incremental_models(context: dg.AssetExecutionContext, lake: LakeResource) -> list[str]:
    """The selected incremental models whose warehouse table has other columns than the model.

    dbt fails such a model (``on_schema_change='fail'``) until it is rebuilt with
    ``--full-refresh``; a table that does not exist yet is built whole anyway.
    """
    declared = {
        name: columns
        for name, columns in _incremental_model_columns().items()
        if dg.AssetKey([name]) in context.selected_asset_keys
    }
    existing = table_facts(lake.layout.warehouse_path, set(declared))
    return sorted(
        name
        for name, facts in existing.items()
        if frozenset(column.lower() for column, _ in facts.columns) != declared[name]
    )


def _is_output_of(context: dg.AssetExecutionContext, event: Any, key: dg.AssetKey) -> bool:
    return isinstance(event, dg.Output) and context.asset_key_for_output(event.output_name) == key


def _late_events_ignored(events: list[Any]) -> int | None:
    """Events agg_events_per_minute does not count, from its late-events check in this build.

    ``None`` when the build did not run the check (it runs whenever the model is built).
    """
    for event in events:
        if (
            isinstance(event, dg.AssetCheckResult)
            and event.asset_key == LATE_EVENTS_CHECK.asset_key
            and event.check_name == LATE_EVENTS_CHECK.name
        ):
            return metadata_int(event.metadata, "dagster_dbt/failed_row_count")
    return None
