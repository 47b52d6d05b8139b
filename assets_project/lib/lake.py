"""Where the lake lives and how raw and dead-letter Delta tables are laid out.

Raw tables hold the contract's columns plus lake metadata columns; dead-letter tables hold the
original record as text with every rule it broke. Both are addressed by URI so that the same
code serves local disk and object storage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.fs as pa_fs
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from assets_project.lib.contracts import Contract
from assets_project.lib.processes import process_exists

REPO_ROOT = Path(__file__).resolve().parents[2]

PARTITION_COLUMN = "_partition_date"
METADATA_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_line", pa.int64(), nullable=False),
    pa.field("_batch_id", pa.string(), nullable=False),
    pa.field("_extracted_at", pa.timestamp("us"), nullable=False),
    pa.field(PARTITION_COLUMN, pa.date32(), nullable=False),
)
METADATA_DESCRIPTIONS: dict[str, str] = {
    "_source": "File the record was read from, or kafka:<topic>/<partition> for a Kafka message.",
    "_source_line": "1-based position of the record in its file (data row for CSV, line for JSON lines), or the offset of a Kafka message.",
    "_batch_id": "Dagster run that ingested the record.",
    "_extracted_at": "When the batch was ingested (UTC).",
    PARTITION_COLUMN: "Date of the contract's partition column; the Delta partition.",
}
REASON_TYPE = pa.struct([("column", pa.string()), ("rule", pa.string()), ("value", pa.string())])
DLQ_SCHEMA = pa.schema(
    [
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_source_line", pa.int64()),
        pa.field("_batch_id", pa.string(), nullable=False),
        pa.field("_extracted_at", pa.timestamp("us"), nullable=False),
        pa.field("contract_version", pa.int32(), nullable=False),
        pa.field("record", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(REASON_TYPE), nullable=False),
    ]
)


def raw_schema(contract: Contract) -> pa.Schema:
    """Arrow schema of the raw Delta table of ``contract``'s source."""
    fields = [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in contract.columns]
    return pa.schema([*fields, *METADATA_FIELDS])


@dataclass(frozen=True)
class LakeLayout:
    """Folders of the file-drop flow and URIs of the Delta tables."""

    data_dir: Path
    lake_uri: str
    warehouse_path: Path

    @classmethod
    def from_env(cls) -> LakeLayout:
        """Paths from DATA_DIR, LAKE_URI and WAREHOUSE_PATH, defaulting to the repo's data/."""
        data_dir = Path(os.environ.get("DATA_DIR", REPO_ROOT / "data")).resolve()
        lake_uri = os.environ.get("LAKE_URI") or str(data_dir / "lake")
        warehouse = Path(os.environ.get("WAREHOUSE_PATH", data_dir / "warehouse.duckdb"))
        return cls(data_dir=data_dir, lake_uri=lake_uri, warehouse_path=warehouse.resolve())

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    def raw_uri(self, source: str) -> str:
        return f"{self.lake_uri.rstrip('/')}/raw/{source}"

    def dlq_uri(self, source: str) -> str:
        return f"{self.lake_uri.rstrip('/')}/dlq/{source}"


OBJECT_STORE_SCHEMES = ("s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://")
# Variables that choose how delta-rs makes an S3 commit atomic; with none of them set, the lake
# uses S3's own conditional writes (If-None-Match), which AWS S3, MinIO, R2 and moto support.
S3_COMMIT_VARIABLES = (
    "AWS_S3_LOCKING_PROVIDER",
    "AWS_CONDITIONAL_PUT",
    "AWS_S3_ALLOW_UNSAFE_RENAME",
)


def is_object_store(uri: str) -> bool:
    """Whether ``uri`` names an object store (S3, GCS, Azure) rather than a local folder."""
    return uri.startswith(OBJECT_STORE_SCHEMES)


def storage_options(uri: str) -> dict[str, str] | None:
    """delta-rs storage options for the lake at ``uri``: none on local disk; on S3, commits
    by conditional put (put-if-absent of the next log entry), so that concurrent writers never
    overwrite each other's commit and no DynamoDB lock table is needed.

    Endpoint, region and credentials are *not* here: delta-rs reads them from the environment
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_ALLOW_HTTP``, or an instance role), so no secret ever passes
    through the project's code, run config or metadata.
    """
    if not uri.startswith(("s3://", "s3a://")):
        return None
    if any(os.environ.get(name) for name in S3_COMMIT_VARIABLES):
        return {}
    return {"conditional_put": "etag"}


def delta_table(uri: str, version: int | None = None) -> DeltaTable:
    """The Delta table at ``uri`` (at ``version``), opened with the lake's storage options."""
    return DeltaTable(uri, version=version, storage_options=storage_options(uri))


def is_delta_table(uri: str) -> bool:
    """Whether a Delta table exists at ``uri`` (local or object store).

    An unreachable object store (no such bucket, credentials refused) raises ``OSError`` rather
    than answering False, so that a misconfigured lake is never mistaken for an empty one.
    """
    return DeltaTable.is_deltatable(uri, storage_options(uri))


def open_table(uri: str) -> DeltaTable | None:
    """The Delta table at ``uri``, or None when none was created there yet."""
    try:
        return delta_table(uri)
    except TableNotFoundError:
        return None


#: DuckDB's memory for a query over the lake (the contract checks, replay): beyond it, joins
#: and aggregates spill to a temporary folder. A DuckDB size (``512MB``, ``2GB``).
LAKE_QUERY_MEMORY_LIMIT = "LAKE_QUERY_MEMORY_LIMIT"
DEFAULT_LAKE_QUERY_MEMORY_LIMIT = "1GB"


#: Spill folders are named ``lake-query-<pid>-<random>`` in the system's temporary folder.
SPILL_PREFIX = "lake-query-"
#: A spill folder is swept once its process is gone and it was left untouched this long
#: (a run's checks end within hours; a folder of another PID namespace sharing the temporary
#: folder is not mistaken for an orphan while it is in use).
SPILL_ORPHAN_SECONDS = 24 * 3600


def sweep_orphaned_spill(root: Path | None = None) -> list[Path]:
    """Remove the spill folders of lake queries whose process is gone (a run worker killed
    mid-query leaves its folder: ``TemporaryDirectory`` cannot clean up after SIGKILL) and
    that nothing touched for :data:`SPILL_ORPHAN_SECONDS`; returns the folders removed."""
    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    for folder in root.glob(f"{SPILL_PREFIX}*-*"):
        pid = folder.name[len(SPILL_PREFIX) :].split("-", 1)[0]
        try:
            if not pid.isdigit() or process_exists(int(pid)):
                continue
            if time.time() - folder.stat().st_mtime < SPILL_ORPHAN_SECONDS:
                continue
        except OSError:  # removed meanwhile
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextmanager
def lake_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection for querying Delta tables registered as Arrow datasets,
    closed on exit.

    delta-rs writes the files of a merge, delete or compaction with Arrow string *view*
    columns, which pyarrow reads back as such and cannot compare in a pushed-down filter
    ("no kernel matching input types (string, string_view)"). Filters are therefore kept in
    DuckDB, which reads view columns fine.

    Its memory is bounded (:data:`LAKE_QUERY_MEMORY_LIMIT`, spilling to a temporary folder
    removed on exit; one a killed process left is swept later, :func:`sweep_orphaned_spill`),
    and the memory Arrow freed while reading goes back to the OS (jemalloc's decay,
    :mod:`assets_project.lib.memory`; ``release_unused`` on exit for a pool chosen otherwise):
    a run worker that checks a raw table and then waits for dbt (in-process executor) would
    otherwise hold it beside dbt's.
    """
    limit = os.environ.get(LAKE_QUERY_MEMORY_LIMIT) or DEFAULT_LAKE_QUERY_MEMORY_LIMIT
    sweep_orphaned_spill()
    with tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-") as spill:
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET disabled_optimizers = 'filter_pushdown'")
            try:
                connection.execute("SET memory_limit = ?", [limit])
            except duckdb.Error as exc:
                raise ValueError(f"{LAKE_QUERY_MEMORY_LIMIT}={limit!r}: {exc}") from None
            connection.execute("SET temp_directory = ?", [spill])
            yield connection
        finally:
            connection.close()
            pa.default_memory_pool().release_unused()


#: delta-rs's (object_store's) switch to virtual-hosted bucket addressing.
VIRTUAL_HOSTED_VARIABLE = "AWS_VIRTUAL_HOSTED_STYLE_REQUEST"


def _truthy(text: str | None) -> bool:
    """A boolean setting as object_store reads it (``true``, ``1``, ``yes``, ``on``, ``y``)."""
    return (text or "").lower() in {"true", "1", "yes", "on", "y"}


def arrow_filesystem(table_uri: str) -> pa_fs.FileSystem | None:
    """A native (C++) Arrow filesystem rooted at the Delta table ``table_uri``, or None for an
    object store other than S3.

    delta-rs's own dataset reads through a filesystem written in Python (``PyFileSystem``).
    Arrow starts reading a scan's files ahead on its I/O threads as soon as the scan is opened;
    when the reader never pulls from it (DuckDB skips a join's probe side when the build side is
    empty), those reads are still pending at interpreter exit and call into a finalizing
    Python: the process crashed (SIGSEGV) or hung there, on local disk and on S3 alike. Arrow's
    own filesystems never call into Python, and read without the GIL.

    On S3, endpoint, region and credentials come from the environment (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, …, a profile or an instance role), as for delta-rs;
    none passes through this code. Buckets are addressed as delta-rs addresses them: by path
    with a custom endpoint, unless ``AWS_VIRTUAL_HOSTED_STYLE_REQUEST`` is true (providers
    that accept virtual-hosted requests only).
    """
    parsed = urlparse(table_uri)
    if parsed.scheme in ("", "file"):
        return pa_fs.SubTreeFileSystem(unquote(parsed.path), pa_fs.LocalFileSystem())
    if parsed.scheme in ("s3", "s3a"):
        s3 = pa_fs.S3FileSystem(
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            endpoint_override=os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"),
            force_virtual_addressing=_truthy(os.environ.get(VIRTUAL_HOSTED_VARIABLE)),
        )
        return pa_fs.SubTreeFileSystem(f"{parsed.netloc}{unquote(parsed.path)}".rstrip("/"), s3)
    return None


FileFilter = list[tuple[str, str, Any]]
"""Tuple filters (``[("_batch_id", "=", batch_id)]``, an AND of them) that choose the files of a
Delta snapshot to read: exactly on partition columns, by the files' min/max statistics on the
others. A superset of the files that hold matching rows: queries still filter the rows."""


def delta_dataset(table: DeltaTable, files: FileFilter | None = None) -> pa_ds.Dataset:
    """``table``'s current snapshot as an Arrow dataset read through :func:`arrow_filesystem`;
    with ``files``, only the files that may hold the rows it selects."""
    return table.to_pyarrow_dataset(
        filesystem=arrow_filesystem(table.table_uri), file_pruning_predicate=files or None
    )


def register_delta(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    table: DeltaTable,
    files: FileFilter | None = None,
) -> None:
    """Make ``table``'s current snapshot (with ``files``, the files that may hold the rows it
    selects) queryable as ``name`` on ``connection``."""
    connection.register(name, delta_dataset(table, files))


def ensure_table(uri: str, schema: pa.Schema, partition_by: list[str] | None = None) -> DeltaTable:
    """Create an empty Delta table at ``uri`` with ``schema`` unless one exists.

    Writers that start together on a new table race to create it: the losers' creation fails
    to commit version 0 (``CommitFailedError``), and they open the winner's table instead.
    """
    if not is_object_store(uri):
        Path(uri).mkdir(parents=True, exist_ok=True)
    try:
        return DeltaTable.create(
            uri,
            schema,
            mode="ignore",
            partition_by=partition_by,
            storage_options=storage_options(uri),
            # A creation that loses the race for version 0 must not be retried as version 1:
            # delta-rs would rebase it into a second CREATE TABLE with another table id.
            commit_properties=CommitProperties(max_commit_retries=0),
        )
    except CommitFailedError:
        table = open_table(uri)
        if table is None:
            raise
        return table


def ensure_source_tables(layout: LakeLayout, contract: Contract) -> None:
    """Create the raw and dead-letter tables of a source so that readers find them."""
    ensure_table(layout.raw_uri(contract.name), raw_schema(contract), [PARTITION_COLUMN])
    ensure_table(layout.dlq_uri(contract.name), DLQ_SCHEMA)
