"""File-drop ingestion: one raw asset and one sensor per source contract.

A file dropped into ``data/landing/<source>/`` is picked up by ``<source>_file_sensor`` once it
has settled, which requests one run per file (run key from path, size and modification time).
The run validates the file against the source's contract, appends valid rows to
``lake/raw/<source>`` and rejected rows to ``lake/dlq/<source>``, then moves the file to
``data/archive/<source>/``; a file that cannot be read at all goes to
``data/quarantine/<source>/`` with a ``.reason`` file beside it.
"""

import json
from datetime import timedelta

import dagster as dg
import pyarrow as pa
from deltalake import DeltaTable

from assets_project.defs.ingestion.replay import replay_metadata
from assets_project.defs.metadata import table_metadata
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import Contract, load_contract, source_names
from assets_project.lib.ingest import IngestResult, ingest_file
from assets_project.lib.lake import METADATA_DESCRIPTIONS, ensure_source_tables, raw_schema
from assets_project.lib.landing import (
    DropFile,
    UnsafePathError,
    archive,
    quarantine,
    resolve_inside,
    scan,
)
from assets_project.lib.readers import UnreadableFileError

INGESTION_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class FileDropConfig(dg.Config):
    """Which dropped file to ingest."""

    path: str | None = None
    """File under the landing folder, e.g. ``users/users_0001.csv``; empty: every ready file."""
    replay_dead_letters: bool | None = None
    """True: read no channel, move the dead letters that pass the current contract into the
    raw table, exactly once (``dead_letter_replay_job`` sets this). Unset, not false, by
    default, so the run config of every other run stays as it was."""


def raw_asset_key(source: str) -> dg.AssetKey:
    """Key of the raw table of ``source``; dbt sources map onto these keys."""
    return dg.AssetKey(["raw", source])


def column_schema(contract: Contract, schema: pa.Schema | None = None) -> dg.TableSchema:
    """The raw table's schema (the contract's, or ``schema`` as found in the lake) described.

    Columns a drop added beyond the contract (schema evolution) are described as such.
    """
    descriptions = {c.name: c.description for c in contract.columns} | METADATA_DESCRIPTIONS
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=descriptions.get(
                    field.name, "Added by a drop; not in the contract yet (text)."
                ),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in (schema or raw_schema(contract))
        ]
    )


def _files_to_ingest(
    config: FileDropConfig, lake: LakeResource, source: str
) -> tuple[list[DropFile], list[str]]:
    folder = lake.layout.landing_dir / source
    if config.path is None:
        return scan(folder, lake.settle_seconds)
    path = resolve_inside(folder, resolve_inside(lake.layout.landing_dir, config.path))
    if not path.is_file():
        return [], [f"{config.path}: no longer in the landing folder (already ingested?)"]
    stat = path.stat()
    relative = f"{source}/{path.relative_to(folder.resolve())}"
    return [
        DropFile(path=path, relative=relative, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    ], []


def _ingest_one(
    context: dg.AssetExecutionContext, drop: DropFile, contract: Contract, lake: LakeResource
) -> IngestResult | None:
    layout = lake.layout
    try:
        result = ingest_file(
            drop.path, contract, layout, source=drop.relative, batch_id=context.run.run_id
        )
    except UnreadableFileError as exc:
        reason = f"{drop.relative}: {exc}"
        target = quarantine(drop.path, layout.quarantine_dir / contract.name, reason)
        context.log.warning(f"quarantined {reason} -> {target}")
        return None
    target = archive(drop.path, layout.archive_dir / contract.name)
    if result.already_ingested:
        context.log.info(f"{drop.relative}: content already in the lake; archived to {target}")
    else:
        context.log.info(
            f"{drop.relative}: {result.rows_in} rows, {result.rows_written} written, "
            f"{result.rows_rejected} rejected; archived to {target}"
        )
    return result


def raw_asset_args(
    contract: Contract, *, description: str, kinds: set[str], channel: str, **metadata: object
) -> dict[str, object]:
    """The ``@dg.asset`` arguments every raw asset shares: key, group, owner, contract
    metadata, retry policy and the contract's freshness policy."""
    return {
        "key": raw_asset_key(contract.name),
        "group_name": "raw",
        "description": f"{contract.description}\n\n{description}",
        "kinds": kinds,
        "owners": [contract.owner],
        "tags": {"source": contract.name, "channel": channel},
        "metadata": {
            "contract_version": contract.version,
            "primary_key": ", ".join(contract.primary_key),
            **metadata,
            **table_metadata(column_schema=column_schema(contract)),
        },
        "retry_policy": INGESTION_RETRY_POLICY,
        "freshness_policy": dg.FreshnessPolicy.time_window(
            warn_window=timedelta(minutes=contract.freshness.warn_after_minutes),
            fail_window=timedelta(minutes=contract.freshness.fail_after_minutes),
        ),
    }


def lake_table_metadata(lake: LakeResource, contract: Contract) -> dict[str, object]:
    """Materialization metadata of the raw table as it is now: versions, URI, columns, rows."""
    layout = lake.layout
    table = DeltaTable(layout.raw_uri(contract.name))
    return {
        "delta_version": table.version(),
        "dlq_delta_version": DeltaTable(layout.dlq_uri(contract.name)).version(),
        "table_uri": layout.raw_uri(contract.name),
        **table_metadata(
            column_schema=column_schema(contract, pa.schema(table.schema().to_arrow())),
            row_count=table.count(),
        ),
    }


def replay_into_raw(
    context: dg.AssetExecutionContext, lake: LakeResource, contract: Contract
) -> dg.MaterializeResult:
    """Replay mode of every raw asset: move the dead letters that pass now into the raw table
    (see :mod:`assets_project.defs.ingestion.replay`)."""
    metadata = replay_metadata(context, lake, contract)
    return dg.MaterializeResult(metadata={**metadata, **lake_table_metadata(lake, contract)})


def ingest_file_drops(
    context: dg.AssetExecutionContext,
    config: FileDropConfig,
    lake: LakeResource,
    contract: Contract,
) -> dict[str, object]:
    """Ingest the requested drop (or every ready one) of ``contract``'s source.

    Returns the materialization metadata. Every raw asset with a file channel runs this,
    including the ones that also read a database or a topic.
    """
    try:
        drops, notes = _files_to_ingest(config, lake, contract.name)
    except UnsafePathError as exc:
        raise dg.Failure(f"refusing to read {config.path}: {exc}", allow_retries=False) from exc
    for note in notes:
        context.log.info(note)
    results = [r for d in drops if (r := _ingest_one(context, d, contract, lake)) is not None]
    written = [r for r in results if not r.already_ingested]
    ensure_source_tables(lake.layout, contract)
    return {
        "channel": "files",
        "files": [r.source_file for r in results],
        "files_already_ingested": [r.source_file for r in results if r.already_ingested],
        "files_quarantined": len(drops) - len(results),
        "rows_in": sum(r.rows_in for r in written),
        "rows_written": sum(r.rows_written for r in written),
        "rows_rejected": sum(r.rows_rejected for r in written),
        "bytes": sum(r.bytes for r in written),
        "duration_s": round(sum(r.seconds for r in written), 3),
        "reject_reasons": dg.MetadataValue.json(
            {r.source_file: r.reject_reasons for r in written if r.reject_reasons}
        ),
        "new_columns": sorted({c for r in written for c in r.new_columns}),
        "ignored_columns": sorted({c for r in written for c in r.ignored_columns}),
        **lake_table_metadata(lake, contract),
    }


def build_file_drop_asset(contract: Contract) -> dg.AssetsDefinition:
    """The raw asset of one file-drop source."""

    @dg.asset(
        **raw_asset_args(
            contract,
            description=f"Raw Delta table `lake/raw/{contract.name}` (append-only, partitioned "
            f"by the {contract.partition_granularity} of `{contract.partition_by}`); rejected records go to "
            f"`lake/dlq/{contract.name}`.",
            kinds={"delta", "duckdb"},
            channel="file",
        )
    )
    def _raw_asset(
        context: dg.AssetExecutionContext, config: FileDropConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        if config.replay_dead_letters:
            return replay_into_raw(context, lake, contract)
        return dg.MaterializeResult(metadata=ingest_file_drops(context, config, lake, contract))

    return _raw_asset


def build_file_drop_sensor(contract: Contract) -> dg.SensorDefinition:
    """The sensor that requests one ingestion run per settled file of one source."""
    key = raw_asset_key(contract.name)
    op_name = key.to_python_identifier()

    @dg.sensor(
        name=f"{contract.name}_file_sensor",
        description=f"Requests a run of raw/{contract.name} for each new file in "
        f"data/landing/{contract.name}/ once it has stopped changing.",
        target=[key],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        ready, notes = scan(lake.layout.landing_dir / contract.name, lake.settle_seconds)
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        requests = [
            dg.RunRequest(
                run_key=f"{contract.name}:{drop.run_key}",
                run_config=dg.RunConfig(ops={op_name: FileDropConfig(path=drop.relative)}),
                tags={"source_file": drop.relative},
            )
            for drop in ready
            if drop.run_key not in seen
        ]
        # Remember only files still in the landing folder: ingested ones move to the archive.
        cursor = json.dumps(sorted(drop.run_key for drop in ready))
        skip = None if requests else "; ".join(notes) or "no new files"
        return dg.SensorResult(run_requests=requests, cursor=cursor, skip_reason=skip)

    return _sensor


CONTRACTS = tuple(load_contract(name) for name in source_names())
FILE_CONTRACTS = tuple(c for c in CONTRACTS if "files" in c.channels)
# Sources fed by files only; a source with another channel too has its raw asset in that
# channel's module, which runs ``ingest_file_drops`` when a sensor names a file.
file_drop_assets = [build_file_drop_asset(c) for c in FILE_CONTRACTS if c.channels == ("files",)]
file_drop_sensors = [build_file_drop_sensor(c) for c in FILE_CONTRACTS]
