"""Dead-letter replay after a contract fix moves each record into raw exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable

from assets_project.lib.contracts import CONTRACTS_DIR, load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout
from assets_project.lib.replay import replay_dead_letters

HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROWS = (
    "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    "2,c@d.co,2026-01-01,platinum,europe,2026-01-02 10:00:00\n"  # tier unknown today
    "3,bad-email,2026-01-01,free,europe,2026-01-02 10:00:00\n"  # stays rejected
    "4,e@f.co,2026-01-01,free,europe,2026-01-02,surplus\n"  # unsplittable row, stays
)


def _fixed_contract(tmp_path: Path):
    data = yaml.safe_load((CONTRACTS_DIR / "users.yml").read_text())
    for column in data["columns"]:
        if column["name"] == "user_tier":
            column["enum"].append("platinum")
    (tmp_path / "users.yml").write_text(yaml.safe_dump(data))
    return load_contract("users", tmp_path)


def _ingested(layout: LakeLayout) -> None:
    path = layout.landing_dir / "users" / "u.csv"
    path.write_text(HEADER + ROWS)
    ingest_file(path, load_contract("users"), layout, source="users/u.csv", batch_id="b1")


def _raw_ids(layout: LakeLayout) -> list[int]:
    return sorted(DeltaTable(layout.raw_uri("users")).to_pyarrow_table()["user_id"].to_pylist())


def _dlq_lines(layout: LakeLayout) -> list[int | None]:
    lines = DeltaTable(layout.dlq_uri("users")).to_pyarrow_table()["_source_line"].to_pylist()
    return sorted(lines, key=lambda v: -1 if v is None else v)


def test_replay_moves_what_passes_now(layout: LakeLayout, tmp_path: Path) -> None:
    _ingested(layout)
    assert _raw_ids(layout) == [1]
    result = replay_dead_letters(layout, _fixed_contract(tmp_path))
    assert (result.examined, result.moved, result.still_rejected) == (3, 1, 2)
    assert _raw_ids(layout) == [1, 2]
    moved = [
        r
        for r in DeltaTable(layout.raw_uri("users")).to_pyarrow_table().to_pylist()
        if r["user_id"] == 2
    ]
    assert (moved[0]["_source"], moved[0]["_source_line"], moved[0]["_batch_id"]) == (
        "users/u.csv",
        2,
        "b1",
    )
    assert _dlq_lines(layout) == [3, 4]  # row 4 could not be split; it keeps its number
    again = replay_dead_letters(layout, _fixed_contract(tmp_path))
    assert again.moved == 0 and _raw_ids(layout) == [1, 2]


def test_replay_interrupted_before_the_delete_does_not_duplicate(
    layout: LakeLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingested(layout)
    contract = _fixed_contract(tmp_path)

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("injected crash before the dead-letter delete")

    with monkeypatch.context() as patch:
        patch.setattr(DeltaTable, "merge", crash)
        with pytest.raises(Crash):
            replay_dead_letters(layout, contract)
    assert _raw_ids(layout) == [1, 2]
    assert len(_dlq_lines(layout)) == 3
    result = replay_dead_letters(layout, contract)
    assert result.moved == 0
    assert _raw_ids(layout) == [1, 2]
    assert _dlq_lines(layout) == [3, 4]  # row 4 could not be split; it keeps its number


def test_cli_replays_with_current_contracts(layout: LakeLayout) -> None:
    _ingested(layout)
    env = {"DATA_DIR": str(layout.data_dir), "LAKE_URI": layout.lake_uri, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "assets_project.dlq", "replay", "users"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "users: 3 dead letters examined, 0 pass now, 0 moved to raw, 3 still rejected" in out
