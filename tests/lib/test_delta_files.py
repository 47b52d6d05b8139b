"""Parquet files written into Delta tables by this project: bounded writer, statistics that
never hide a row, replacing and merging rows in one commit, and commits racing other writers."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from assets_project.lib.delta_files import (
    PartitionedParquetWriter,
    TableFiles,
    data_files,
    file_stats,
    merge_newest,
    remove_where,
)
from assets_project.lib.lake import LakeLayout, delta_dataset, ensure_table, storage_options

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64(), nullable=False),
        pa.field("v", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("at", pa.timestamp("us"), nullable=False),
        pa.field("_source", pa.string(), nullable=False),
        pa.field("p", pa.date32(), nullable=False),
    ]
)
DAY = date(2026, 1, 1)


def _rows(keys: list[int], *, at: datetime, source: str = "db", v: int = 0) -> pa.Table:
    return pa.table(
        {
            "k": keys,
            "v": [v] * len(keys),
            "name": [f"n{k}" for k in keys],
            "at": [at] * len(keys),
            "_source": [source] * len(keys),
            "p": [DAY + timedelta(days=k % 5) for k in keys],
        },
        schema=SCHEMA,
    )


def _table(uri: str) -> DeltaTable:
    return ensure_table(uri, SCHEMA, ["p"])


def _append(uri: str, rows: pa.Table) -> None:
    write_deltalake(uri, rows, mode="append", storage_options=storage_options(uri))


def _content(uri: str) -> list[tuple]:
    rows = DeltaTable(uri, storage_options=storage_options(uri)).to_pyarrow_table().to_pylist()
    return sorted(tuple(r[f.name] for f in SCHEMA) for r in rows)


def _as_tuples(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r[f.name] for f in SCHEMA) for r in table.to_pylist())


def test_the_writer_holds_a_bounded_amount_of_rows_and_files_whatever_the_input(
    tmp_path,
) -> None:
    """Rows of 40 partitions in random order: the rows held never pass the budget (plus the
    batch being split), at most four files are open, and every row lands once."""
    uri = str(tmp_path / "t")
    table = _table(uri)
    rng = random.Random(3)
    keys = list(range(60_000))
    rng.shuffle(keys)
    rows = pa.table(
        {
            "k": keys,
            "v": keys,
            "name": [f"name-{k}" for k in keys],
            "at": [datetime(2026, 1, 1) + timedelta(seconds=k) for k in keys],
            "_source": ["db"] * len(keys),
            "p": [DAY + timedelta(days=k % 40) for k in keys],
        },
        schema=SCHEMA,
    )
    files = TableFiles(table, pending_bytes=256 << 10, max_open_files=4, row_group_rows=2_000)
    batch_bytes = 0
    for batch in rows.to_batches(max_chunksize=1_000):
        batch_bytes = max(batch_bytes, batch.nbytes)
        files.write(batch)
    files.commit(CommitProperties())
    assert files.writer.peak_pending_bytes <= (256 << 10) + batch_bytes
    assert files.writer.peak_open_files <= 4
    assert _content(uri) == _as_tuples(rows)
    partitions = {f.partition["p"] for f in data_files(DeltaTable(uri))}
    assert len(partitions) == 40


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, 123456),
        datetime(2026, 1, 2, 3, 4, 5, 999999),
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_statistics_never_let_a_reader_skip_a_file_that_holds_the_row(
    tmp_path, value: datetime
) -> None:
    """Timestamps are bounded at whole milliseconds, widened outwards (a bound past year 9999
    is left out); long strings are left out; integers are exact."""
    uri = str(tmp_path / "t")
    files = TableFiles(_table(uri))
    rows = _rows([1, 2], at=value)
    rows = rows.set_column(2, "name", pa.array(["x" * 100, "y"]))
    for batch in rows.to_batches():
        files.write(batch)
    files.commit(CommitProperties())
    table = DeltaTable(uri)
    (file,) = [f for f in data_files(table) if f.partition["p"] == DAY + timedelta(days=1)]
    assert file.minimum["k"] == file.maximum["k"] == 1
    assert file.minimum.get("name") is None  # 100 characters: no bound rather than a wrong one
    low, high = file.minimum.get("at"), file.maximum.get("at")
    if value.year == 9999:
        assert high is None  # a millisecond above it is past what a timestamp holds
    if low is not None and high is not None:
        assert low <= value <= high and high - low <= timedelta(milliseconds=1)
    for filters in ([("at", "=", value)], [("k", "=", 1)], [("name", "=", "x" * 100)]):
        dataset = delta_dataset(table, filters)
        assert dataset.to_table(filter=pc.field("k") == 1).num_rows == 1


def test_remove_where_drops_only_the_rows_of_one_source_and_keeps_untouched_files(
    tmp_path,
) -> None:
    uri = str(tmp_path / "t")
    _table(uri)

    def paths() -> set[str]:
        return {f.path for f in data_files(DeltaTable(uri))}

    _append(uri, _rows([0, 5, 10], at=datetime(2026, 1, 1)))  # db only
    db_only = paths()
    _append(uri, _rows([1, 6], at=datetime(2026, 1, 1), source="file.csv"))  # others only
    others = paths() - db_only
    mixed = pa.concat_tables(
        [_rows([2], at=datetime(2026, 1, 1)), _rows([7], at=datetime(2026, 1, 1), source="f")]
    )
    _append(uri, mixed)
    files = TableFiles(DeltaTable(uri))
    new = _rows([3, 4], at=datetime(2026, 2, 1), v=9)
    for batch in new.to_batches():
        files.write(batch)
    remove_where(files, "_source", "db")
    files.commit(CommitProperties())
    kept = _rows([1, 6], at=datetime(2026, 1, 1), source="file.csv")
    expected = pa.concat_tables([kept, _rows([7], at=datetime(2026, 1, 1), source="f"), new])
    assert _content(uri) == _as_tuples(expected)
    assert others <= paths() and not db_only & paths()  # kept unread; removed
    assert len(files.removes) == len(db_only) + 1  # and the mixed file was rewritten


def test_merge_newest_keeps_the_newest_version_of_every_key(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _table(uri)
    t1, t2, t3 = datetime(2026, 1, 1), datetime(2026, 1, 2), datetime(2026, 1, 3)
    _append(uri, _rows([1, 2, 3], at=t2, v=1))
    _append(uri, _rows([4], at=t1, v=1, source="old.csv"))
    _append(uri, _rows([4], at=t3, v=3, source="new.csv"))
    source = pa.concat_tables(
        [
            _rows([1], at=t3, v=2),  # newer: replaces
            _rows([2], at=t2, v=2),  # same version: unchanged (a rewind would rewrite it)
            _rows([3], at=t1, v=2),  # older: unchanged
            _rows([4], at=t2, v=2),  # newer than old.csv, older than new.csv
            _rows([9], at=t1, v=2),  # new key
        ]
    )
    files = TableFiles(DeltaTable(uri))
    counts = merge_newest(files, pa.RecordBatchReader.from_stream(source), ["k"], "at")
    files.commit(CommitProperties())
    assert (counts.rows_in, counts.rows_written, counts.rows_unchanged) == (5, 3, 2)
    assert counts.target_rows_replaced == 2
    content = {(r[0], r[3], r[1]) for r in _content(uri)}
    assert content == {(1, t3, 2), (2, t2, 1), (3, t2, 1), (4, t2, 2), (4, t3, 3), (9, t1, 2)}

    rewind = TableFiles(DeltaTable(uri))
    again = merge_newest(
        rewind,
        pa.RecordBatchReader.from_stream(_rows([2], at=t2, v=7)),
        ["k"],
        "at",
        or_same=True,
    )
    rewind.commit(CommitProperties())
    assert (again.rows_written, again.target_rows_replaced) == (1, 1)
    assert {(r[0], r[1]) for r in _content(uri) if r[0] == 2} == {(2, 7)}


def _write_files(uri: str, rows: pa.Table) -> TableFiles:
    files = TableFiles(DeltaTable(uri))
    for batch in rows.to_batches():
        files.write(batch)
    return files


def test_a_commit_moves_over_blind_appends_and_fails_over_anything_else(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _table(uri)
    _append(uri, _rows([1], at=datetime(2026, 1, 1)))
    own = CommitProperties(app_transactions=[Transaction("db", 5)])

    files = _write_files(uri, _rows([2], at=datetime(2026, 1, 2)))
    remove_where(files, "_source", "db")
    _append(uri, _rows([3], at=datetime(2026, 1, 1), source="drop.csv"))  # a blind append
    files.commit(own)
    assert {r[0] for r in _content(uri)} == {2, 3}
    assert DeltaTable(uri).transaction_version("db") == 5

    files = _write_files(uri, _rows([4], at=datetime(2026, 1, 3)))
    remove_where(files, "_source", "db")
    DeltaTable(uri).delete("k = 3")  # removes a file: the plan may be stale
    with pytest.raises(CommitFailedError):
        files.commit(own)

    files = _write_files(uri, _rows([5], at=datetime(2026, 1, 3)))
    write_deltalake(  # another extraction of the same source
        uri,
        _rows([6], at=datetime(2026, 1, 3)),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction("db", 6)]),
    )
    with pytest.raises(CommitFailedError):
        files.commit(own)
    assert {r[0] for r in _content(uri)} == {2, 6}


def test_files_land_in_a_lake_on_s3(s3_layout: LakeLayout) -> None:
    uri = s3_layout.raw_uri("t")
    _table(uri)
    files = TableFiles(DeltaTable(uri, storage_options=storage_options(uri)))
    rows = _rows(list(range(20)), at=datetime(2026, 1, 1))
    for batch in rows.to_batches():
        files.write(batch)
    files.commit(CommitProperties())
    assert _content(uri) == _as_tuples(rows)


def test_statistics_follow_columns_by_name_past_a_nested_one(tmp_path) -> None:
    """A struct has a leaf per field: the columns after it are found by name, not position."""
    table = pa.table({"s": [{"a": 100, "b": 200}, {"a": 101, "b": 201}], "k": [5, 9]})
    pq.write_table(table, tmp_path / "f.parquet")
    stats = json.loads(file_stats(pq.read_metadata(tmp_path / "f.parquet"), table.schema))
    assert (stats["minValues"], stats["maxValues"]) == ({"k": 5}, {"k": 9})
    assert stats["nullCount"] == {"k": 0} and stats["numRecords"] == 2


def test_a_partition_value_that_would_need_escaping_is_refused(tmp_path) -> None:
    schema = pa.schema([("k", pa.int64()), ("p", pa.string())])
    writer = PartitionedParquetWriter(str(tmp_path), schema, "p")
    writer.write_batch(pa.record_batch({"k": [1], "p": ["a/b"]}, schema=schema))
    with pytest.raises(ValueError, match="would need escaping"):
        writer.close()


def test_a_file_with_bounds_cut_to_milliseconds_is_still_read_for_its_microseconds(
    tmp_path,
) -> None:
    """delta-rs writes timestamp bounds truncated to the millisecond: the merge widens them
    rather than skip a file that holds the key."""
    uri = str(tmp_path / "t")
    _table(uri)
    at = datetime(2026, 1, 2, 3, 4, 5, 123456)
    _append(uri, _rows([1], at=at))  # written by delta-rs: max 03:04:05.123
    (file,) = data_files(DeltaTable(uri))
    assert file.maximum["at"] < at
    assert file.may_hold("at", at, at)
