"""How dbt resources become Dagster assets: one graph from raw Delta tables to marts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from assets_project.defs.dbt.gate import GATED_EAGER
from assets_project.defs.sources import raw_asset_key
from assets_project.lib.mart_contracts import MartColumn, MartContract, load_mart_contracts

if TYPE_CHECKING:
    from dagster_dbt import DbtProject


class ShopDbtTranslator(DagsterDbtTranslator):
    """Maps dbt sources onto the raw ingestion assets and models into layer groups; a mart
    takes its column schema, owner, ``contract_version`` tag and freshness policy from its
    contract (``contracts/marts/<mart>.odcs.yaml``)."""

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

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """dbt's metadata; a mart's column schema is its contract's (types, descriptions, rules)."""
        metadata = super().get_metadata(dbt_resource_props)
        contract = _mart_contract(dbt_resource_props)
        if contract is None:
            return metadata
        # A plain TableSchema under the standard key, as dagster-dbt writes it (assets.py reads it).
        return {**metadata, "dagster/column_schema": mart_column_schema(contract)}

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        """A mart is owned by its contract's owner."""
        contract = _mart_contract(dbt_resource_props)
        return [contract.owner] if contract else super().get_owners(dbt_resource_props)

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        """dbt's tags, and a mart's ``contract_version``."""
        tags = super().get_tags(dbt_resource_props)
        contract = _mart_contract(dbt_resource_props)
        return {**tags, "contract_version": contract.version} if contract else tags

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """The spec dagster-dbt builds, with a mart's freshness policy from its contract SLA."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        contract = _mart_contract(self.get_resource_props(manifest, unique_id))
        if contract is None:
            return spec
        return spec.replace_attributes(
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(minutes=contract.freshness.fail_after_minutes),
                warn_window=timedelta(minutes=contract.freshness.warn_after_minutes),
            )
        )

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


def _mart_contract(dbt_resource_props: Mapping[str, Any]) -> MartContract | None:
    """The contract of the dbt model ``dbt_resource_props`` if it is a mart that has one."""
    if dbt_resource_props["resource_type"] != "model":
        return None
    return load_mart_contracts().get(dbt_resource_props["name"])


def _rules(column: MartColumn) -> list[str]:
    """What the contract promises about ``column`` beyond type and nullability, as text."""
    rules = ["primary key"] if column.primary_key else []
    if column.accepted_values is not None:
        rules.append(f"one of {', '.join(column.accepted_values.values)}")
    if column.min is not None:
        rules.append(f">= {column.min:g}")
    if column.max is not None:
        rules.append(f"<= {column.max:g}")
    rules += [f"references {r.to_table}.{r.to_column}" for r in column.relationships]
    if column.filled_warning:
        rules.append("NULL only until the dimension member lands (warning)")
    return rules


def mart_column_schema(contract: MartContract) -> dg.TableSchema:
    """The mart's columns as its contract promises them: type, description, constraints."""
    table = [f"grain: {', '.join(contract.grain)}"]
    if contract.row_count is not None:
        low, high = contract.row_count.min_rows, contract.row_count.max_rows
        table.append(f"rows: {low if low is not None else 0} to {high or 'any'}")
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=column.data_type,
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not column.not_null,
                    unique=contract.primary_key == (column.name,),
                    other=_rules(column),
                ),
            )
            for column in contract.columns
        ],
        constraints=dg.TableConstraints(other=table),
    )
