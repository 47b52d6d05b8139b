"""PostgreSQL ingestion: raw assets of sources that live in the operational database.

A source whose contract lists the ``postgres`` channel (the demo's ``orders``) gets one raw
asset fed two ways: a schedule extracts the rows changed since the stored watermark from
PostgreSQL (every 15 minutes unless ``ORDERS_EXTRACT_CRON`` says otherwise), and the file
sensor of the source still hands it CSV exports dropped into ``data/landing/<source>/``. Both
write the same raw Delta table, so the graph downstream stays one piece.
"""

import os
from datetime import datetime, timedelta
from typing import Literal

import dagster as dg
import psycopg
from pydantic import Field

from assets_project.defs.ingestion.raw import (
    FileDropConfig,
    lake_table_metadata,
    materialize_raw,
    raw_asset,
)
from assets_project.defs.metadata import Metadata
from assets_project.defs.resources import LakeResource, PostgresResource
from assets_project.defs.sources import contracts_with, raw_asset_key
from assets_project.lib.contracts import Contract
from assets_project.lib.postgres import (
    ExtractResult,
    PermanentSourceError,
    extract_table,
    read_watermarks,
    retrying,
    source_label,
)
from assets_project.lib.redact import redacting_errors


class DatabaseSourceConfig(FileDropConfig):
    """Which channel to read, and how far back to extract from the database."""

    channel: Literal["auto", "files", "postgres"] = "auto"
    """``auto``: the dropped file in ``path`` if given, else the database if DATABASE_URL is
    set, else every ready dropped file."""
    full_refresh: bool = False
    """Re-extract the whole table and replace the rows extracted before."""
    rewind_to: str | None = None
    """Re-extract from this update time (ISO 8601, UTC), rewriting rows of the same version."""
    overlap_minutes: float = Field(default=10.0, ge=0)
    """How far behind the watermark to re-read, for rows that long transactions commit late."""


def _extract(
    context: dg.AssetExecutionContext,
    config: DatabaseSourceConfig,
    lake: LakeResource,
    database: PostgresResource,
    contract: Contract,
) -> ExtractResult:
    if not database.configured:
        raise dg.Failure(
            f"{source_label(contract)}: DATABASE_URL is not set, so there is no database to "
            f"extract from; set it, or drop CSV exports into data/landing/{contract.name}/",
            allow_retries=False,
        )
    rewind_to = datetime.fromisoformat(config.rewind_to) if config.rewind_to else None
    # extract_table raises no credential; the redactor here guards the whole boundary again
    # (Dagster stores the failure, its message and its chained exceptions in the event log).
    redact = database.redactor
    try:
        with redacting_errors(redact):
            for attempt in retrying():
                with attempt:
                    return extract_table(
                        database.url or "",
                        contract,
                        lake.layout,
                        batch_id=context.run.run_id,
                        overlap=timedelta(minutes=config.overlap_minutes),
                        full_refresh=config.full_refresh,
                        rewind_to=rewind_to,
                        connect_timeout=database.connect_timeout_s,
                    )
    except PermanentSourceError as exc:
        raise dg.Failure(redact(str(exc)), allow_retries=False) from exc
    except psycopg.Error as exc:  # transient and still failing: the run's RetryPolicy retries
        raise dg.Failure(
            redact(f"{source_label(contract)}: the database kept failing: {exc}"),
            allow_retries=True,
        ) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")


def _extract_metadata(
    result: ExtractResult, lake: LakeResource, contract: Contract, batch_id: str
) -> Metadata:
    watermark = result.watermark
    return {
        "channel": "postgres",
        "mode": result.mode,
        "watermark": dg.MetadataValue.timestamp(watermark.timestamp())
        if watermark
        else dg.MetadataValue.null(),
        "watermark_utc": watermark.isoformat() if watermark else None,
        "previous_watermark_utc": result.previous_watermark.isoformat()
        if result.previous_watermark
        else None,
        "extracted_since_utc": result.since.isoformat() if result.since else None,
        "rows_in": result.rows_in,
        "rows_written": result.rows_written,
        "rows_unchanged": result.rows_unchanged,
        "rows_rejected": result.rows_rejected,
        "rows_already_in_lake": result.rows_already_in_lake,
        "deduplicated_by_key": result.deduplicated,
        "duration_s": round(result.seconds, 3),
        "reject_reasons": dg.MetadataValue.json(result.reject_reasons),
        **lake_table_metadata(lake, contract, batch_id),
    }


def build_database_source_asset(contract: Contract) -> dg.AssetsDefinition:
    """The raw asset of a source extracted from PostgreSQL (and also fed by file drops)."""
    assert contract.postgres is not None
    label = source_label(contract)

    @raw_asset(
        contract,
        description=f"Raw Delta table `lake/raw/{contract.name}`. From `{label}`: rows "
        f"changed since the watermark (on `{contract.update_time}`, re-reading an overlap "
        f"window) merged by {', '.join(contract.primary_key)}, keeping the newest version; "
        "the watermark is committed with the rows. From CSV drops in "
        f"`data/landing/{contract.name}/`: appended. Rejected records go to "
        f"`lake/dlq/{contract.name}`.",
        kinds={"delta", "postgres"},
        channel="postgres",
        source_table=label,
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        config: DatabaseSourceConfig,
        lake: LakeResource,
        postgres: PostgresResource,
    ) -> dg.MaterializeResult:
        def extract() -> Metadata:
            result = _extract(context, config, lake, postgres, contract)
            context.log.info(
                f"{label}: {result.mode} extraction since {result.since}: {result.rows_in} rows "
                f"read, {result.rows_written} written, {result.rows_unchanged} unchanged, "
                f"{result.rows_rejected} rejected; watermark {result.watermark}"
            )
            return _extract_metadata(result, lake, contract, context.run.run_id)

        return materialize_raw(
            context,
            config,
            lake,
            contract,
            requested=config.channel,
            service="postgres",
            configured=postgres.configured,
            read_service=extract,
        )

    return _raw_asset


def build_extraction_schedule(contract: Contract) -> dg.ScheduleDefinition:
    """Extract ``contract``'s table on a cron schedule while a database is configured."""
    key = raw_asset_key(contract.name)
    job = dg.define_asset_job(
        f"{contract.name}_extraction_job",
        selection=dg.AssetSelection.assets(key),
        description=f"Incremental extraction of {source_label(contract)} into raw/{contract.name}.",
    )
    cron = os.environ.get(f"{contract.name.upper()}_EXTRACT_CRON", "*/15 * * * *")

    @dg.schedule(
        name=f"{contract.name}_extraction_schedule",
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Extracts the rows of {source_label(contract)} changed since the last "
        f"run ({cron}); idle while DATABASE_URL is not set.",
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, postgres: PostgresResource, lake: LakeResource
    ) -> dg.RunRequest | dg.SkipReason:
        if not postgres.configured:
            return dg.SkipReason(
                f"DATABASE_URL is not set: {source_label(contract)} is not extracted "
                f"(orders arrive as CSV drops in data/landing/{contract.name}/ instead)"
            )
        # A tick's error is stored by Dagster too: it may carry no credential.
        with redacting_errors(postgres.redactor):
            watermark = read_watermarks(lake.layout, contract).raw
        op = key.to_python_identifier()
        return dg.RunRequest(
            run_config=dg.RunConfig(ops={op: DatabaseSourceConfig(channel="postgres")}),
            tags={"source": contract.name, "watermark": str(watermark)},
        )

    return _schedule


DATABASE_CONTRACTS = contracts_with("postgres")
database_source_assets = [build_database_source_asset(c) for c in DATABASE_CONTRACTS]
extraction_schedules = [build_extraction_schedule(c) for c in DATABASE_CONTRACTS]
