"""The quality gate in front of the dbt models: a bad batch does not flow into the marts.

One rule, three places: a model waits while a *blocking* check of one of its parents has
failed on that parent's latest materialization (the contract checks of the raw tables with
ERROR severity, and the dbt tests of ERROR severity, are blocking).

* In a run, Dagster applies it itself: a blocking check that fails with ERROR severity fails its
  step, and the steps downstream of it are skipped.
* Under automation, ``AutomationCondition.eager()`` ignores checks, so the models' condition is
  :data:`GATED_EAGER`: eager, and no parent with a failed blocking check.
* The daily schedule builds only the models none of whose upstream raw tables has a failed
  blocking check (:func:`held_models`), and skips with the reason when that leaves nothing.

Dagster's automation conditions see whether a check failed, not with which severity; so every
blocking check fails only with ERROR (a reject rate in its warn band is the separate,
non-blocking ``reject_rate_warning``) and a warning never holds the models. Once the data is fixed (a new
batch that passes, or the checks re-run on fixed data), the gate opens by itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

A = dg.AutomationCondition

BLOCKING_CHECK_FAILED = A.any_checks_match(A.check_failed(), blocking_only=True).with_label(
    "any_blocking_check_failed"
)
"""True for an asset one of whose blocking checks failed on its latest materialization."""

GATED_EAGER = (
    A.eager()
    & ~A.any_deps_match(BLOCKING_CHECK_FAILED).with_label("any_deps_blocking_check_failed")
).with_label("eager_after_blocking_checks")
"""``eager()``, held while a blocking check of a parent has failed."""


def _failed_on_latest(instance: dg.DagsterInstance, check: dg.AssetCheckKey) -> bool:
    """Whether ``check`` failed when it last judged its asset's latest materialization."""
    record = instance.get_latest_asset_check_evaluation_record(check)
    evaluation = record.evaluation if record is not None else None
    if evaluation is None or evaluation.passed:
        return False
    latest = instance.fetch_materializations(check.asset_key, limit=1).records
    target = evaluation.target_materialization_data
    return not latest or target is None or target.storage_id == latest[0].storage_id


def failed_blocking_checks(
    instance: dg.DagsterInstance, graph: dg.AssetGraph, assets: Iterable[dg.AssetKey]
) -> list[dg.AssetCheckKey]:
    """The blocking checks of ``assets`` that failed on their asset's latest materialization."""
    wanted = set(assets)
    return sorted(
        (
            check
            for check in graph.asset_check_keys
            if check.asset_key in wanted
            and graph.get_check_spec(check).blocking
            and _failed_on_latest(instance, check)
        ),
        key=lambda c: c.to_user_string(),
    )


def held_models(
    instance: dg.DagsterInstance, graph: dg.AssetGraph, models: Iterable[dg.AssetKey]
) -> tuple[set[dg.AssetKey], list[dg.AssetCheckKey]]:
    """Which of ``models`` the gate holds, and the failed blocking checks that hold them.

    Only the parents outside ``models`` are looked at (the raw tables): the checks of the
    models themselves run again in the build, which applies the gate in-run.
    """
    selected = set(models)
    parents = {p for m in selected for p in graph.get(m).parent_keys} - selected
    failed = failed_blocking_checks(instance, graph, parents)
    if not failed:
        return set(), []
    blocked = dg.AssetSelection.assets(*{c.asset_key for c in failed}).downstream()
    return set(blocked.resolve(graph)) & selected, failed
