"""The uniqueness rules of the contract checks, judged on a real Delta raw table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import LakeLayout, delta_dataset, raw_schema
from assets_project.lib.quality import (
    batch_counts,
    batch_null_counts,
    batches_counts,
    conflicting_versions,
    of_batches,
)

EVENTS = load_contract("user_events")


def _layout(tmp_path: Path) -> LakeLayout:
    return LakeLayout(
        data_dir=tmp_path, lake_uri=str(tmp_path / "lake"), warehouse_path=tmp_path / "w.duckdb"
    )


def _append(
    layout: LakeLayout,
    batch: str,
    ids: list[str],
    event_type: str = "click",
    amount: float | None = None,
) -> None:
    n = len(ids)
    rows = {
        "event_id": ids,
        "user_id": [1] * n,
        "event_type": [event_type] * n,
        "event_timestamp": [datetime(2026, 3, 1, 12)] * n,
        "properties": ["{}"] * n,
        "amount": [amount] * n,
        "_source": [f"{batch}.jsonl"] * n,
        "_source_line": list(range(1, n + 1)),
        "_batch_id": [batch] * n,
        "_extracted_at": [datetime(2026, 3, 1, 13)] * n,
        "_partition_date": [date(2026, 3, 1)] * n,
    }
    schema = raw_schema(EVENTS)
    table = pa.table(rows).cast(schema)
    write_deltalake(layout.raw_uri("user_events"), table, mode="append")


def test_a_conflict_needs_two_different_records_of_one_version_and_one_from_the_batch(
    tmp_path: Path,
) -> None:
    layout = _layout(tmp_path)
    _append(layout, "b1", ["e1", "e2", "e3"])
    _append(layout, "b2", ["e1", "e4"])  # e1 again, the same record: a harmless copy
    assert conflicting_versions(layout, EVENTS, "b2").count == 0
    _append(layout, "b3", ["e2", "e5"], event_type="purchase")  # e2 again, another record
    found = conflicting_versions(layout, EVENTS, "b3")
    assert (found.count, [e["event_id"] for e in found.examples]) == (1, ["e2"])
    assert conflicting_versions(layout, EVENTS, "b2").count == 0  # b2 wrote no e2
    assert conflicting_versions(layout, EVENTS).count == 1  # the whole table
    assert conflicting_versions(layout, EVENTS, "absent").count == 0


def test_a_batch_that_holds_every_row_is_judged_on_the_whole_table_and_only_then(
    tmp_path: Path,
) -> None:
    layout = _layout(tmp_path)
    _append(layout, "b1", ["e1", "e2"])
    _append(layout, "b1", ["e1"], event_type="purchase")  # the same batch, another record
    assert conflicting_versions(layout, EVENTS, "b1").count == 1  # every row is b1's
    _append(layout, "b2", ["e9"])
    DeltaTable(layout.raw_uri("user_events")).optimize.compact()  # b1 and b2 in one file
    assert conflicting_versions(layout, EVENTS, "b2").count == 0  # the file, not the batch
    assert conflicting_versions(layout, EVENTS, "b1").count == 1


def test_a_batch_is_counted_from_the_files_that_may_hold_it(tmp_path: Path) -> None:
    """Batch ids that agree on their first 40 characters (beyond any truncation of string
    statistics), before and after a compaction that mixes batches in one file."""
    layout = _layout(tmp_path)
    prefix = "run-" + "0" * 36
    batches = {f"{prefix}-{n:02d}": 3 + n for n in range(8)}
    for batch, rows in batches.items():
        _append(
            layout, batch, [f"{batch}/{i}" for i in range(rows)], amount=1.0 if rows % 2 else None
        )
    table = DeltaTable(layout.raw_uri("user_events"))
    ids = list(batches)
    assert len(delta_dataset(table, of_batches([ids[3]])).files) == 1  # one file of eight read
    assert len(delta_dataset(table, of_batches(ids[:2])).files) == 2

    def counted() -> dict[str, tuple[int, int]]:
        nulls = {b: batch_null_counts(layout, EVENTS, b) for b in ids}
        return {
            b: (batch_counts(layout, "user_events", b).raw, nulls[b].columns["amount"]) for b in ids
        }

    expected = {b: (rows, 0 if rows % 2 else rows) for b, rows in batches.items()}
    assert counted() == expected
    assert {b: c.raw for b, c in batches_counts(layout, "user_events", ids[2:5]).items()} == {
        b: batches[b] for b in ids[2:5]
    }
    table.optimize.compact()
    assert len(DeltaTable(layout.raw_uri("user_events")).file_uris()) == 1
    assert counted() == expected
    assert batch_counts(layout, "user_events", prefix).raw == 0  # a prefix of every id


@pytest.mark.slow
def test_judging_a_batch_that_wrote_no_raw_row_exits_cleanly(tmp_path: Path) -> None:
    """A batch whose every record was rejected wrote no raw row. Judging it must not leave an
    Arrow scan opened and unread (a join with an empty side): the process then crashed
    (SIGSEGV) or hung at exit on a raw table of many files, 4 times out of 4 here."""
    layout = _layout(tmp_path)
    for file in range(60):
        _append(layout, f"b{file}", [f"e{file}-{i}" for i in range(20_000)])
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from assets_project.lib.contracts import load_contract
        from assets_project.lib.lake import LakeLayout
        from assets_project.lib.quality import conflicting_versions
        root = Path({str(tmp_path)!r})
        layout = LakeLayout(data_dir=root, lake_uri=str(root / "lake"), warehouse_path=root / "w")
        print(conflicting_versions(layout, load_contract("user_events"), "rejected").count)
        """
    )
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr[-2000:]
