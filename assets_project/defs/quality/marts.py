"""Quality suites of the marts: one multi-asset check per mart, one result per contract rule.

The rules come from the mart's contract (``contracts/marts/<mart>.odcs.yaml``) through
:mod:`assets_project.lib.mart_suite`: required columns, allowed values, ranges, references to
the dimensions, the grain and the row-count bounds. Each result carries the number of rows
that break the rule and a sample of them. ERROR rules are blocking: in a run that builds the
mart, a failure stops the marts downstream of it.
"""

from collections.abc import Iterator

import dagster as dg
import duckdb

from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import WAREHOUSE_POOL
from assets_project.lib.mart_contracts import MartContract, load_mart_contracts
from assets_project.lib.mart_suite import RuleResult, evaluate_all, rules_of


def _result(key: dg.AssetKey, outcome: RuleResult) -> dg.AssetCheckResult:
    rule = outcome.rule
    metadata: dict[str, dg.RawMetadataValue] = {"failing_rows": outcome.failing_rows}
    if outcome.row_count is not None:
        metadata["row_count"] = outcome.row_count
    if outcome.sample:
        metadata["failing_sample"] = dg.MetadataValue.json(outcome.sample)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=rule.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR
        if rule.severity == "error"
        else dg.AssetCheckSeverity.WARN,
        description=rule.description,
        metadata=metadata,
    )


def build_mart_suite(contract: MartContract) -> dg.AssetChecksDefinition:
    """The quality suite of one mart."""
    key = dg.AssetKey([contract.name])
    rules = rules_of(contract)
    dimensions = sorted(
        {r.to_table for c in contract.columns for r in c.relationships} - {contract.name}
    )
    specs = [
        dg.AssetCheckSpec(
            name=rule.name,
            asset=key,
            description=rule.description,
            blocking=rule.severity == "error",
            additional_deps=[dg.AssetKey([d]) for d in dimensions],
        )
        for rule in rules
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"{contract.name}_contract_suite",
        description=f"The promises of {contract.name}'s contract, one result per rule.",
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def _suite(
        context: dg.AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = {k.name for k in context.selected_asset_check_keys}
        wanted = [r for r in rules if r.name in selected]
        with duckdb.connect(str(lake.layout.warehouse_path), read_only=True) as connection:
            for outcome in evaluate_all(connection, wanted):
                yield _result(key, outcome)

    return _suite


mart_suites = [build_mart_suite(c) for c in load_mart_contracts().values()]
