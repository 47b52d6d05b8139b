"""``python -m assets_project lake``: show, history, as-of, restore on a real lake."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from assets_project.__main__ import main
from assets_project.lib.lake import LakeLayout
from tests.lib.test_timetravel import drop, ingest, user_ids


@pytest.fixture
def lake_env(layout: LakeLayout, monkeypatch: pytest.MonkeyPatch) -> LakeLayout:
    """Two users drops ingested (versions 1 and 2 of raw/users); the CLI points at them."""
    monkeypatch.setenv("DATA_DIR", str(layout.data_dir))
    monkeypatch.setenv("LAKE_URI", layout.lake_uri)
    for n in range(2):
        ingest(layout, drop(layout, n, rows=5))
    return layout


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lake", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_lists_every_table_with_version_files_size_and_rows(
    lake_env: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show")
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["raw/users"][1:3] == ["2", "2"]  # version 2, two files
    assert lines["raw/users"][5] == "10"  # rows
    assert "not created yet" in " ".join(lines["raw/orders"])


def test_history_shows_operations_batch_ids_and_app_transactions(
    lake_env: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "history", "users", "--limit", "2")
    assert code == 0
    rows = out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["2", "1"]
    assert all("WRITE" in r and "file-" in r and "=1" in r for r in rows)
    batch_ids = [c["batch_id"] for c in DeltaTable(lake_env.raw_uri("users")).history(2)]
    assert all(b in out for b in batch_ids)


def test_as_of_prints_or_writes_the_earlier_rows(
    lake_env: LakeLayout, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    code, out, _ = run(capsys, "as-of", "raw/users", "--version", "1")
    assert code == 0 and out.startswith("5 rows")
    parquet, csv = tmp_path / "v1.parquet", tmp_path / "v1.csv"
    assert run(capsys, "as-of", "users", "--version", "1", "--output", str(parquet))[0] == 0
    assert sorted(pq.read_table(parquet)["user_id"].to_pylist()) == list(range(5))
    timestamp = DeltaTable(lake_env.raw_uri("users")).history(1)[0]["timestamp"] / 1000
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat()
    assert run(capsys, "as-of", "users", "--timestamp", moment, "--output", str(csv))[0] == 0
    assert sorted(pacsv.read_csv(csv)["user_id"].to_pylist()) == [*range(5), *range(100, 105)]
    code, _, err = run(capsys, "as-of", "nope/users", "--version", "1")
    assert code == 2 and "unknown table" in err


def test_restore_needs_yes_and_then_is_a_new_commit(
    lake_env: LakeLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = lake_env.raw_uri("users")
    code, out, _ = run(capsys, "restore", "users", "--version", "1")
    assert code == 2 and "add --yes" in out
    assert DeltaTable(uri).version() == 2  # nothing written
    code, out, _ = run(capsys, "restore", "users", "--version", "1", "--yes")
    assert code == 0 and "new version 3" in out
    assert user_ids(DeltaTable(uri)) == list(range(5))
    assert DeltaTable(uri).history(1)[0]["operation"] == "RESTORE"
