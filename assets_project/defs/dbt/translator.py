"""How dbt resources become Dagster assets: one graph from raw Delta tables to marts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from assets_project.defs.dbt.gate import GATED_EAGER
from assets_project.defs.sources import raw_asset_key


class ShopDbtTranslator(DagsterDbtTranslator):
    """Maps dbt sources onto the raw ingestion assets and models into layer groups."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        """Sources of the ``raw`` dbt source are the raw assets; models keep their name."""
        if dbt_resource_props["resource_type"] == "source":
            return self._source_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """The layer folder under ``models/`` (``staging`` or ``marts``) is the group."""
        return self._layer(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        """Models rebuild when new upstream data lands (never while a run of them is going),
        unless a blocking check of a parent failed (see :mod:`assets_project.defs.dbt.gate`)."""
        return GATED_EAGER

    def _source_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        """``source('raw', 'users')`` is the asset ``raw/users`` written by file ingestion."""
        if dbt_resource_props["source_name"] != "raw":
            raise ValueError(
                f"dbt source {dbt_resource_props['unique_id']} is not under the 'raw' source; "
                "every dbt source must be a raw table written by an ingestion asset"
            )
        return raw_asset_key(dbt_resource_props["name"])

    def _layer(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """Second element of the fqn: ``['shop_lakehouse', 'marts', ...]`` gives ``marts``."""
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else None
