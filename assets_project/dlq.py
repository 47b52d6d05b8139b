"""Dead-letter command line: ``python -m assets_project.dlq replay <source> [<source> ...]``.

Re-validates a source's dead-letter rows against its current contract (after the contract or
the data was fixed) and moves the rows that now pass into the raw table, exactly once, also
when another replay of the source runs at the same time.

The replay runs as a Dagster run of ``dead_letter_replay_job`` on the Dagster instance in
``DAGSTER_HOME`` (default ``<DATA_DIR>/dagster_home``, the instance of ``make dev``), executed
in this process: the run, its materializations of ``raw/<source>`` and the checks it runs are
stored there, so eager models downstream rebuild as after any ingestion.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import dagster as dg

from assets_project.defs.ingestion.replay import (
    REPLAY_JOB_NAME,
    replay_asset_selection,
    replay_run_config,
)
from assets_project.defs.metadata import metadata_int
from assets_project.lib.contracts import source_names
from assets_project.lib.lake import LakeLayout

log = logging.getLogger("assets_project.dlq")


def dagster_home() -> Path:
    """``DAGSTER_HOME``, or the ``dagster_home`` folder under the data folder (as ``make dev``)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) if home else LakeLayout.from_env().data_dir / "dagster_home"


def run_replay(
    sources: list[str], instance: dg.DagsterInstance, *, log_level: str = "WARNING"
) -> dg.ExecuteInProcessResult:
    """Execute ``dead_letter_replay_job`` for the raw assets of ``sources`` on ``instance``."""
    from assets_project.definitions import defs  # the whole code location: loaded on demand

    job = defs.resolve_job_def(REPLAY_JOB_NAME)
    run_config = replay_run_config(sources)
    return job.execute_in_process(
        run_config=dg.RunConfig(
            ops=run_config.ops, loggers={"console": {"config": {"log_level": log_level}}}
        ),
        instance=instance,
        asset_selection=replay_asset_selection(sources),
        tags={"dead_letter_replay": ",".join(sources)},
        raise_on_error=False,
    )


def _report(result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        examined, moved, already, rejected = (
            metadata_int(metadata, key) or 0
            for key in ("rows_in", "rows_written", "rows_already_in_raw", "rows_rejected")
        )
        log.info(
            "%s: %d dead letters examined, %d pass now, %d moved to raw, %d still rejected",
            materialization.asset_key.path[-1],
            examined,
            moved + already,
            moved,
            rejected,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m assets_project.dlq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="move dead letters that now pass into raw")
    replay.add_argument("sources", nargs="+", choices=source_names(), metavar="SOURCE")
    replay.add_argument(
        "-v", "--verbose", action="store_true", help="show the run's Dagster log lines"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    sources = list(dict.fromkeys(args.sources))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_replay(sources, instance, log_level="DEBUG" if args.verbose else "WARNING")
        _report(result)
        log.info("Dagster run %s of %s (instance %s)", result.run_id, REPLAY_JOB_NAME, home)
        replayed = {
            e.step_materialization_data.materialization.asset_key.path[-1]
            for e in result.get_asset_materialization_events()
        }
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                # A blocking check that still fails (e.g. the batches' reject rate, when the
                # dead letters are still rejected) fails the run, which holds the marts; the
                # replay itself is done.
                log.warning(
                    "%s: check %s fails (%s)",
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.severity.value,
                )
        if set(sources) - replayed:
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data.error is not None:
                    log.error(
                        "%s failed: %s", event.step_key, event.step_failure_data.error.message
                    )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
