"""The kit every raw asset shares, whatever its channel: run config, the ``@dg.asset``
arguments, the one channel-choice rule, the file-drop ingestion (every channel's asset takes
dropped files too), replay mode and the lake metadata of a materialization."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects

from assets_project.defs.ingestion.replay import replay_metadata
from assets_project.defs.metadata import (
    NULL_COUNTS,
    Metadata,
    table_metadata,
)
from assets_project.defs.resources import LakeResource, s3_resource_from_env
from assets_project.defs.sources import raw_asset_key, table_pool
from assets_project.lib.contracts import CONTRACTS_ROOT, Column, Contract, contract_path
from assets_project.lib.ingest import FileChangedError, IngestResult, ingest_file
from assets_project.lib.lake import (
    METADATA_DESCRIPTIONS,
    delta_table,
    ensure_source_tables,
    raw_schema,
)
from assets_project.lib.landing import (
    DropFile,
    LandingPolicy,
    UnsafePathError,
    archive,
    quarantine,
    resolve_inside,
    scan,
)
from assets_project.lib.landing_s3 import (
    ObjectChangedError,
    S3Drop,
    S3Landing,
    check_unchanged,
    discard_spool,
    drop_of,
    fetch,
    scan_objects,
    still_there,
)
from assets_project.lib.landing_s3 import archive as archive_object
from assets_project.lib.landing_s3 import quarantine as quarantine_object
from assets_project.lib.metrics import NEWEST_EVENT_TIME, batch_metrics
from assets_project.lib.quality import batch_null_counts, newest_event_time
from assets_project.lib.readers import UnreadableFileError
from assets_project.lib.redact import redacting_errors

INGESTION_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

#: The executor config of the runs the ingestion sensors request: the raw step and its checks
#: run in the run worker's own process, one after another (the default, multiprocess, starts
#: one more Python process per step, each loading the code location: seconds of start-up per
#: step for a run that ingests one file). Pools apply the same way in either executor.
INGESTION_RUN_EXECUTION: dict[str, Any] = {"config": {"in_process": {}}}


class FileDropConfig(dg.Config):
    """Which dropped file to ingest."""

    path: str | None = None
    """File under the landing folder, e.g. ``users/users_0001.csv``; empty: every ready file."""
    replay_dead_letters: bool | None = None
    """True: read no channel, move the dead letters that pass the current contract into the
    raw table, exactly once (``dead_letter_replay_job`` sets this). Unset, not false, by
    default, so the run config of every other run stays as it was."""


def choose_channel(
    contract: Contract, *, requested: str, path: str | None, service: str, configured: bool
) -> str:
    """The one channel rule of every raw asset: an explicit ``requested`` channel wins;
    ``auto`` takes the dropped file in ``path`` if given, else the ``service`` (``postgres``,
    ``kafka``) when it is configured, else the ready file drops when the contract has a file
    channel (so ``make dev`` ingests the demo drops with no service running), else the service
    (whose asset then says it is not configured). Files are refused for a source without a
    file channel."""
    if requested == "auto":
        files = path is not None or (not configured and "files" in contract.channels)
        requested = "files" if files else service
    if requested == "files" and "files" not in contract.channels:
        raise dg.Failure(
            f"{contract.name} has no file channel (its channels: {', '.join(contract.channels)})",
            allow_retries=False,
        )
    return requested


def column_rules(contract: Contract, column: Column) -> list[str]:
    """The contract's rules of ``column`` beyond type and nullability, as short phrases."""
    rules = ["primary key"] if column.name in contract.primary_key else []
    if column.unique:
        rules.append("unique per key (no value belongs to two keys)")
    if column.enum is not None:
        rules.append("one of " + ", ".join(column.enum))
    rules += [f"subset {name}: {', '.join(members)}" for name, members in column.enum_subsets]
    for label, value in (
        ("min", column.min),
        ("max", column.max),
        ("max length", column.max_length),
        ("matches", column.regex),
        ("from JSON path", column.path),
    ):
        if value is not None:
            rules.append(f"{label} {value:g}" if isinstance(value, float) else f"{label} {value}")
    return rules


def column_schema(contract: Contract, schema: pa.Schema | None = None) -> dg.TableSchema:
    """The raw table's schema (the contract's, or ``schema`` as found in the lake) described,
    with the contract's rules of each column as its constraints.

    Columns a drop added beyond the contract (schema evolution) are described as such.
    """
    descriptions = {c.name: c.description for c in contract.columns} | METADATA_DESCRIPTIONS
    columns = {c.name: c for c in contract.columns}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=descriptions.get(
                    field.name, "Added by a drop; not in the contract yet (text)."
                ),
                constraints=dg.TableColumnConstraints(
                    nullable=field.nullable,
                    other=column_rules(contract, columns[field.name])
                    if field.name in columns
                    else None,
                ),
            )
            for field in (schema or raw_schema(contract))
        ]
    )


S3_RESOURCE_KEY = "s3"
"""The ``dagster_aws.s3.S3Resource`` that file sensors and raw assets use when
``LANDING_URI`` is on S3 (only then is it required, and added to the definitions)."""
LANDING_ERRORS = (OSError, BotoCoreError, ClientError)
"""What moving a drop may raise: a local file system error, or an S3 one."""

Drop = DropFile | S3Drop


def drop_name(drop: Drop) -> str:
    """The drop's file or object name (``users_0001.csv``)."""
    return drop.relative.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LocalLanding:
    """The landing folder ``<data_dir>/landing/<source>`` of one source."""

    lake: LakeResource
    source: str

    @property
    def where(self) -> str:
        return f"data/landing/{self.source}/"

    def scan(self, now: float | None, grace: float) -> tuple[list[Drop], list[str]]:
        """Ready files and notes (:func:`assets_project.lib.landing.scan`)."""
        folder = self.lake.layout.landing_dir / self.source
        ready, notes = scan(folder, self.lake.settle_seconds, now, empty_grace_seconds=grace)
        return list(ready), notes

    def named(self, path: str) -> Drop | None:
        """The drop a run's config names (``<source>/<name>``); UnsafePathError outside."""
        layout = self.lake.layout
        folder = layout.landing_dir / self.source
        resolved = resolve_inside(folder, resolve_inside(layout.landing_dir, path))
        if not resolved.is_file():
            return None
        stat = resolved.stat()
        relative = f"{self.source}/{resolved.relative_to(folder.resolve())}"
        return DropFile(
            path=resolved, relative=relative, size=stat.st_size, mtime_ns=stat.st_mtime_ns
        )

    def present(self, drop: Drop) -> bool:
        """Whether the drop is still in landing, unchanged (a run did not take it)."""
        assert isinstance(drop, DropFile)
        try:
            stat = drop.path.stat()
        except FileNotFoundError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (drop.size, drop.mtime_ns)

    @contextmanager
    def local_copy(self, drop: Drop) -> Iterator[tuple[Path, Callable[[], None] | None]]:
        """The file to read (the drop itself) and no extra check."""
        assert isinstance(drop, DropFile)
        yield drop.path, None

    def archive(self, drop: Drop) -> str:
        assert isinstance(drop, DropFile)
        return str(archive(drop.path, self.lake.layout.archive_dir / self.source))

    def quarantine(self, drop: Drop, reason: str) -> str:
        assert isinstance(drop, DropFile)
        return str(quarantine(drop.path, self.lake.layout.quarantine_dir / self.source, reason))


@dataclass(frozen=True)
class S3LandingZone:
    """The landing prefix ``<LANDING_URI>/<source>/`` of one source, listed through
    dagster-aws (:func:`dagster_aws.s3.sensor.get_objects`)."""

    lake: LakeResource
    store: S3Landing
    client: Any
    source: str

    @property
    def where(self) -> str:
        return f"{self.store.landing}/{self.source}/"

    def scan(self, now: float | None, grace: float) -> tuple[list[Drop], list[str]]:
        """Ready objects and notes (:func:`assets_project.lib.landing_s3.scan_objects`)."""
        prefix = self.store.source_prefix(self.source)
        bucket = self.store.landing.bucket
        objects = get_objects(bucket, prefix, client=self.client)
        ready, notes = scan_objects(
            bucket,
            prefix,
            objects,
            self.lake.settle_seconds,
            time.time() if now is None else now,
            empty_grace_seconds=grace,
        )
        return list(ready), notes

    def named(self, path: str) -> Drop | None:
        key = self.store.key_of(self.source, path)
        return drop_of(self.client, self.store.landing.bucket, key, path)

    def present(self, drop: Drop) -> bool:
        assert isinstance(drop, S3Drop)
        return still_there(self.client, drop)

    @contextmanager
    def local_copy(self, drop: Drop) -> Iterator[tuple[Path, Callable[[], None] | None]]:
        """The object's version fetched into the spool, and the check that the key still
        holds it (called right before the commit); the spool file is deleted afterwards."""
        assert isinstance(drop, S3Drop)
        path = fetch(self.client, drop, self.lake.layout.spool_dir)
        try:
            yield path, lambda: check_unchanged(self.client, drop)
        finally:
            discard_spool(path)

    def archive(self, drop: Drop) -> str:
        assert isinstance(drop, S3Drop)
        return archive_object(self.client, drop, self.store)

    def quarantine(self, drop: Drop, reason: str) -> str:
        assert isinstance(drop, S3Drop)
        return quarantine_object(self.client, drop, self.store, reason)


Landing = LocalLanding | S3LandingZone


def s3_client_of(context: Any) -> Any:
    """A boto3 client for the landing zone on S3: the ``s3`` resource's when the definitions
    carry one, else dagster-aws's :class:`S3Resource` made from the environment
    (:func:`~assets_project.defs.resources.s3_resource_from_env`: endpoint and credentials read
    by boto3 from there, never configured). Not a declared resource requirement: an op or sensor
    that names its resources as parameters (``lake``) cannot also declare keys, and one that
    required ``s3`` only with ``LANDING_URI`` set would change the definitions with it."""
    resources = getattr(context, "resources", None)
    resource = getattr(resources, S3_RESOURCE_KEY, None) if resources is not None else None
    if resource is None:
        resource = s3_resource_from_env()
    return resource.get_client() if isinstance(resource, S3Resource) else resource


def landing_of(context: Any, lake: LakeResource, source: str) -> Landing:
    """Where ``source``'s drops land: the S3 prefix when ``lake.landing_uri`` is set, else the
    local folder."""
    store = lake.s3_landing
    if store is None:
        return LocalLanding(lake, source)
    return S3LandingZone(lake, store, s3_client_of(context), source)


def _files_to_ingest(config: FileDropConfig, landing: Landing) -> tuple[list[Drop], list[str]]:
    if config.path is None:
        grace = LandingPolicy.from_env().empty_grace_seconds
        return landing.scan(None, grace)
    drop = landing.named(config.path)
    if drop is None:
        return [], [f"{config.path}: no longer in the landing zone (already ingested?)"]
    return [drop], []


def _ingest_one(
    context: dg.AssetExecutionContext,
    drop: Drop,
    contract: Contract,
    landing: Landing,
    deferred: list[str],
) -> IngestResult | None:
    """Ingest one drop and archive it; ``None`` if it was quarantined or left in landing.

    A drop that changed while it was read is left in landing (its name is added to
    ``deferred``): nothing was committed, and it is requested again once it has settled.
    """
    layout = landing.lake.layout
    try:
        with landing.local_copy(drop) as (path, source_check):
            result = ingest_file(
                path,
                contract,
                layout,
                source=drop.relative,
                batch_id=context.run.run_id,
                source_check=source_check,
            )
    except UnreadableFileError as exc:
        reason = f"{drop.relative}: {exc}"
        try:
            target = landing.quarantine(drop, reason)
        except ObjectChangedError as changed:
            context.log.warning(f"{drop.relative}: not quarantined: {changed}")
            deferred.append(drop.relative)
            return None
        context.log.warning(f"quarantined {reason} -> {target}")
        return None
    except FileChangedError as exc:
        context.log.warning(
            f"{drop.relative}: {exc}; nothing committed, left in the landing zone until it "
            "settles (a producer that pauses while writing should use a .done marker or write "
            "under a temporary name and rename)"
        )
        deferred.append(drop.relative)
        return None
    if isinstance(drop, S3Drop):
        try:
            target = landing.archive(drop)
        except ObjectChangedError:
            # Rewritten after the commit: the lake holds the version that was read; the new
            # version is a new drop (a new ETag) and is read whole on its own.
            context.log.warning(
                f"{drop.relative}: replaced after version {drop.etag} was ingested; the new "
                "version stays in landing and is ingested as a new drop"
            )
            return result
    elif _changed_since(drop, result):
        # Written to after its content was committed (a tiny window after the last check):
        # the lake holds what was read, the file holds more. Set it aside with the facts.
        reason = (
            f"{drop.relative}: changed after it was ingested; the lake holds its first "
            f"{result.bytes} bytes (sha256 {result.sha256}), this file has more"
        )
        target = landing.quarantine(drop, reason)
        context.log.error(f"quarantined {reason} -> {target}")
        return result
    else:
        target = landing.archive(drop)
    if result.already_ingested:
        context.log.info(f"{drop.relative}: content already in the lake; archived to {target}")
    else:
        context.log.info(
            f"{drop.relative}: {result.rows_in} rows, {result.rows_written} written, "
            f"{result.rows_rejected} rejected; archived to {target}"
        )
    return result


def _changed_since(drop: Drop, result: IngestResult) -> bool:
    """Whether the file is no longer the one ``ingest_file`` read (size or time differ)."""
    if result.mtime_ns is None or not isinstance(drop, DropFile):
        return False
    stat = drop.path.stat()
    return (stat.st_size, stat.st_mtime_ns) != (result.bytes, result.mtime_ns)


def raw_asset(
    contract: Contract,
    *,
    description: str,
    kinds: set[str],
    channel: str,
    retry_policy: dg.RetryPolicy | None = INGESTION_RETRY_POLICY,
    **metadata: Any,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``@dg.asset`` with what every raw asset shares: key, group, owners (the contract's
    owner and team), contract metadata and tags, retry policy (in-run step retries), the
    contract's freshness policy and the table's pool (one writer of the table at a time, and
    never beside its maintenance). With ``LANDING_URI`` on S3, a file channel reads the landing
    zone through dagster-aws's S3 client (:func:`s3_client_of`)."""
    return dg.asset(
        pool=table_pool(contract.name),
        key=raw_asset_key(contract.name),
        group_name="raw",
        description=f"{contract.description}\n\n{description}",
        kinds=kinds,
        owners=[contract.owner, f"team:{contract.team}"],
        tags={"source": contract.name, "channel": channel, "contract_version": contract.semver},
        metadata={
            "contract": str(contract_path(contract.name).relative_to(CONTRACTS_ROOT.parents[1])),
            "contract_version": contract.semver,
            "primary_key": ", ".join(contract.primary_key),
            **metadata,
            **table_metadata(column_schema=column_schema(contract)),
        },
        retry_policy=retry_policy,
        freshness_policy=dg.FreshnessPolicy.time_window(
            warn_window=timedelta(minutes=contract.freshness.warn_after_minutes),
            fail_window=timedelta(minutes=contract.freshness.fail_after_minutes),
        ),
    )


def lake_table_metadata(
    lake: LakeResource, contract: Contract, batch_id: str | None = None
) -> Metadata:
    """Materialization metadata of the raw table as it is now: versions, URI, columns, rows,
    the time of its newest record and, given the ``batch_id`` of an ingestion, that batch's
    null counts (the anomaly checks judge both)."""
    layout = lake.layout
    table = delta_table(layout.raw_uri(contract.name))
    newest = newest_event_time(layout, contract)
    batch: Metadata = {}
    if batch_id is not None:
        nulls = batch_null_counts(layout, contract, batch_id)
        batch[NULL_COUNTS] = dg.MetadataValue.json({"rows": nulls.rows, "columns": nulls.columns})
    return {
        NEWEST_EVENT_TIME: dg.MetadataValue.timestamp(newest)
        if newest is not None
        else dg.MetadataValue.null(),
        **batch,
        "delta_version": table.version(),
        "dlq_delta_version": delta_table(layout.dlq_uri(contract.name)).version(),
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
) -> Metadata:
    """Ingest the requested drop (or every ready one) of ``contract``'s source.

    Returns the materialization metadata. Every raw asset with a file channel runs this,
    including the ones that also read a database or a topic.
    """
    landing = landing_of(context, lake, contract.name)
    try:
        drops, notes = _files_to_ingest(config, landing)
    except UnsafePathError as exc:
        raise dg.Failure(f"refusing to read {config.path}: {exc}", allow_retries=False) from exc
    for note in notes:
        context.log.info(note)
    deferred: list[str] = []
    results = [
        r for d in drops if (r := _ingest_one(context, d, contract, landing, deferred)) is not None
    ]
    written = [r for r in results if not r.already_ingested]
    ensure_source_tables(lake.layout, contract)
    return {
        "channel": "files",
        "files": [r.source_file for r in results],
        "files_already_ingested": [r.source_file for r in results if r.already_ingested],
        "files_quarantined": len(drops) - len(results) - len(deferred),
        "files_changed_while_read": deferred,
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
        **lake_table_metadata(lake, contract, context.run.run_id),
    }


def materialize_raw(
    context: dg.AssetExecutionContext,
    config: FileDropConfig,
    lake: LakeResource,
    contract: Contract,
    *,
    requested: str,
    service: str,
    configured: bool,
    read_service: Callable[[], Metadata],
) -> dg.MaterializeResult:
    """The body of every raw asset: replay mode, else the channel rule picks the dropped files
    or the service (``read_service`` reads it and returns the materialization metadata). The
    batch's reject rate and event-time lag are added to the metadata."""
    with redacting_errors(lake.redactor):  # a lake error never carries the store's secret
        if config.replay_dead_letters:
            return replay_into_raw(context, lake, contract)
        channel = choose_channel(
            contract, requested=requested, path=config.path, service=service, configured=configured
        )
        if channel == "files":
            metadata = ingest_file_drops(context, config, lake, contract)
        else:
            metadata = read_service()
    # Arrow's allocator keeps freed batch memory for reuse; a run worker that ingests and then
    # waits for dbt (in-process executor) would hold it beside dbt's. Hand it back to the OS.
    pa.default_memory_pool().release_unused()
    return dg.MaterializeResult(metadata={**metadata, **batch_metrics(metadata, time.time())})
