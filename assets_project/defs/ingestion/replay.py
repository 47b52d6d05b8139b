"""Dead-letter replay as a Dagster job: a replay is a materialization of the raw asset.

``dead_letter_replay_job`` selects the raw asset of every source, with run config
``replay_dead_letters: true`` for each (the default of the job; pick sources by selecting their
assets in the launchpad, or ``python -m assets_project.dlq replay <source> ...``). In replay mode
a raw asset does not read its channel: it re-validates ``lake/dlq/<source>`` against the
current contract and moves the records that pass now into ``lake/raw/<source>``, exactly once
(see :mod:`assets_project.lib.replay`). The run materializes ``raw/<source>``, so eager dbt
models downstream rebuild, and the asset's checks run in the same run.

Materialization metadata of a replay (``channel: replay``):

* ``rows_in``: dead letters examined; ``rows_written``: records moved into raw;
  ``rows_rejected``: records that still fail and stay in the dead-letter table;
  ``rows_already_in_raw``: records that pass and were in raw already (written by a replay
  that died before its dead-letter delete). ``rows_in = rows_written + rows_already_in_raw +
  rows_rejected``.
* ``replayed_batches``: per original ``_batch_id``: examined / moved / still_rejected. Every
  record a replay reads was in the lake before and keeps the ``_batch_id`` of the run that
  first read it (no row carries the replay run's id), so the batch checks of a replay
  (``channel: replay``) judge these batches: see ``defs/quality/checks.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from assets_project.defs.metadata import Metadata
from assets_project.defs.resources import LakeResource
from assets_project.defs.sources import REPLAY_CHANNEL, raw_asset_key
from assets_project.lib.contracts import Contract, source_names
from assets_project.lib.replay import replay_dead_letters

REPLAY_JOB_NAME = "dead_letter_replay_job"


def replay_metadata(
    context: dg.AssetExecutionContext, lake: LakeResource, contract: Contract
) -> Metadata:
    """Replay ``contract``'s dead letters; returns the replay's materialization metadata.

    The raw asset adds its table metadata (versions, schema, row count) after this returns.
    """
    result = replay_dead_letters(lake.layout, contract, run_id=context.run.run_id)
    context.log.info(
        f"{contract.name}: {result.examined} dead letters examined, {result.moved} moved to "
        f"raw, {result.already_in_raw} already in raw, {result.still_rejected} still rejected"
        + (
            f" ({result.attempts - 1} commit race(s) lost and retried)"
            if result.attempts > 1
            else ""
        )
    )
    return {
        "channel": REPLAY_CHANNEL,
        "rows_in": result.examined,
        "rows_written": result.moved,
        "rows_rejected": result.still_rejected,
        "rows_already_in_raw": result.already_in_raw,
        "replayed_batches": dg.MetadataValue.json(result.batches),
        "replay_attempts": result.attempts,
    }


def replay_run_config(sources: Iterable[str]) -> dg.RunConfig:
    """Run config that puts the raw assets of ``sources`` in replay mode."""
    return dg.RunConfig(
        ops={
            raw_asset_key(source).to_python_identifier(): {"config": {"replay_dead_letters": True}}
            for source in sources
        }
    )


def replay_asset_selection(sources: Iterable[str]) -> list[dg.AssetKey]:
    """The raw assets a replay of ``sources`` materializes."""
    return [raw_asset_key(source) for source in sources]


dead_letter_replay_job = dg.define_asset_job(
    REPLAY_JOB_NAME,
    selection=dg.AssetSelection.assets(*replay_asset_selection(source_names())),
    config=replay_run_config(source_names()),
    description="Re-validates the dead letters of the selected sources against their current "
    "contracts and moves the records that pass into the raw tables, exactly once "
    "(materializes raw/<source>; its checks run, eager models downstream rebuild).",
    tags={"channel": REPLAY_CHANNEL},
)
