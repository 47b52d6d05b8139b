"""Append rows to a Delta table as Parquet files and one commit that carries the offsets.

The Kafka ingestor writes the Parquet files of a chunk itself, one per date partition, and
commits them with ``create_write_transaction``. Files written but never committed (a kill in
between) are invisible to every reader and never counted. The files carry a row count but no
min/max statistics, so filters prune them by date partition only.
"""

from __future__ import annotations

import json
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction, RemoveAction

from assets_project.lib.failpoints import failpoint
from assets_project.lib.lake import PARTITION_COLUMN


def append_parquet(
    table: DeltaTable, uri: str, rows: pa.Table, properties: CommitProperties
) -> None:
    """Write one Parquet file per date partition of ``rows``, then commit them to ``table``
    (at ``uri``) with ``properties`` in one Delta commit (an empty one when there are none)."""
    schema = pa.schema(table.schema().to_arrow())
    filesystem, root = pafs.FileSystem.from_uri(uri)
    actions: list[AddAction | RemoveAction] = []
    if rows.num_rows:
        data_columns = [n for n in rows.column_names if n != PARTITION_COLUMN]
        dates = rows[PARTITION_COLUMN]
        for day in pc.unique(dates).to_pylist():
            part = rows.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
            folder = f"{PARTITION_COLUMN}={day.isoformat()}"
            name = f"{folder}/part-{uuid.uuid4().hex}-c000.zstd.parquet"
            filesystem.create_dir(f"{root}/{folder}", recursive=True)
            path = f"{root}/{name}"
            pq.write_table(
                part.select(data_columns), path, filesystem=filesystem, compression="zstd"
            )
            info = filesystem.get_file_info(path)
            actions.append(
                AddAction(
                    path=name,
                    size=info.size,
                    partition_values={PARTITION_COLUMN: day.isoformat()},
                    modification_time=int(time.time() * 1000),
                    data_change=True,
                    # Row count only: delta-rs reads absent min/max values as null
                    # bounds and would prune the file from filtered scans.
                    stats=json.dumps({"numRecords": part.num_rows}),
                )
            )
    failpoint("kafka.after_parquet_write")
    table.create_write_transaction(
        actions,
        mode="append",
        schema=schema,
        partition_by=[PARTITION_COLUMN],
        commit_properties=properties,
    )
