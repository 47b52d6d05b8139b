"""Dead-letter replay after a contract fix moves each record into raw exactly once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import FAILPOINT_ENV, failpoint_hook
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout
from assets_project.lib.replay import ReplayResult, replay_dead_letters
from tests.contract_documents import changed, document, prop

HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROWS = (
    "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    "2,c@d.co,2026-01-01,platinum,europe,2026-01-02 10:00:00\n"  # tier unknown today
    "3,bad-email,2026-01-01,free,europe,2026-01-02 10:00:00\n"  # stays rejected
    "4,e@f.co,2026-01-01,free,europe,2026-01-02,surplus\n"  # unsplittable row, stays
)


def _fixed_contract(tmp_path: Path):
    doc = document("users")
    prop(doc, "user_tier")["enum"].append({"value": "platinum"})
    return changed("users", tmp_path, doc)


def _ingested(layout: LakeLayout) -> None:
    path = layout.landing_dir / "users" / "u.csv"
    path.write_text(HEADER + ROWS)
    ingest_file(path, load_contract("users"), layout, source="users/u.csv", batch_id="b1")


def _raw_ids(layout: LakeLayout) -> list[int]:
    return sorted(DeltaTable(layout.raw_uri("users")).to_pyarrow_table()["user_id"].to_pylist())


def _dlq_lines(layout: LakeLayout) -> list[int | None]:
    lines = DeltaTable(layout.dlq_uri("users")).to_pyarrow_table()["_source_line"].to_pylist()
    return sorted(lines, key=lambda v: -1 if v is None else v)


def test_replay_moves_what_passes_now(lake_layout: LakeLayout, tmp_path: Path) -> None:
    _ingested(lake_layout)
    assert _raw_ids(lake_layout) == [1]
    result = replay_dead_letters(lake_layout, _fixed_contract(tmp_path))
    assert (result.examined, result.moved, result.still_rejected) == (3, 1, 2)
    assert _raw_ids(lake_layout) == [1, 2]
    moved = [
        r
        for r in DeltaTable(lake_layout.raw_uri("users")).to_pyarrow_table().to_pylist()
        if r["user_id"] == 2
    ]
    assert (moved[0]["_source"], moved[0]["_source_line"], moved[0]["_batch_id"]) == (
        "users/u.csv",
        2,
        "b1",
    )
    assert _dlq_lines(lake_layout) == [3, 4]  # row 4 could not be split; it keeps its number
    again = replay_dead_letters(lake_layout, _fixed_contract(tmp_path))
    assert again.moved == 0 and _raw_ids(lake_layout) == [1, 2]


def test_replay_interrupted_before_the_delete_does_not_duplicate(
    lake_layout: LakeLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingested(lake_layout)
    contract = _fixed_contract(tmp_path)

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("injected crash before the dead-letter delete")

    with monkeypatch.context() as patch:
        patch.setattr(DeltaTable, "merge", crash)
        with pytest.raises(Crash):
            replay_dead_letters(lake_layout, contract)
    assert _raw_ids(lake_layout) == [1, 2]
    assert len(_dlq_lines(lake_layout)) == 3
    result = replay_dead_letters(lake_layout, contract)
    assert result.moved == 0
    assert _raw_ids(lake_layout) == [1, 2]
    assert _dlq_lines(lake_layout) == [3, 4]  # row 4 could not be split; it keeps its number


def test_cli_replays_with_current_contracts(lake_layout: LakeLayout) -> None:
    _ingested(lake_layout)
    env = {
        "DATA_DIR": str(lake_layout.data_dir),
        "LAKE_URI": lake_layout.lake_uri,
        "PATH": "/usr/bin:/bin",
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},  # an S3 lake's
    }
    out = subprocess.run(
        [sys.executable, "-m", "assets_project.dlq", "replay", "users"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "users: 3 dead letters examined, 0 pass now, 0 moved to raw, 3 still rejected" in out


ROUNDS = 4
PLATINUM_ROWS = 40


def _round_file(layout: LakeLayout, round_no: int) -> None:
    """A drop whose ``platinum`` rows pass only the fixed contract, plus one row that never does."""
    first = 1000 * (round_no + 1)
    lines = [
        f"{first + i},u{first + i}@b.co,2026-01-01,platinum,europe,2026-01-02 10:00:00\n"
        for i in range(PLATINUM_ROWS)
    ]
    lines.append(f"{first + PLATINUM_ROWS},bad-email,2026-01-01,free,europe,2026-01-02 10:00:00\n")
    path = layout.landing_dir / "users" / f"r{round_no}.csv"
    path.write_text(HEADER + "".join(lines))
    ingest_file(
        path,
        load_contract("users"),
        layout,
        source=f"users/r{round_no}.csv",
        batch_id=f"r{round_no}",
    )


def _replay_worker(
    data_dir: str, contracts: str, rounds: int, start: Any, done: Any, results: Any
) -> None:
    """Replay ``users`` once per round, as soon as every party has reached the start barrier."""
    data = Path(data_dir)
    layout = LakeLayout(data_dir=data, lake_uri=str(data / "lake"), warehouse_path=data / "w.db")
    contract = load_contract("users", Path(contracts))
    for _ in range(rounds):
        start.wait(timeout=300)
        try:
            result = replay_dead_letters(layout, contract)
            results.put(("ok", result.moved, result.still_rejected))
        except Exception as exc:  # reported to the test, which fails on it
            results.put(("error", repr(exc), 0))
        done.wait(timeout=300)


def test_two_concurrent_replays_move_each_record_exactly_once(
    layout: LakeLayout, tmp_path: Path
) -> None:
    """Two processes replay one source at the same moment, several rounds in a row."""
    _fixed_contract(tmp_path)
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(3), context.Barrier(3)
    results = context.Queue()
    workers = [
        context.Process(
            target=_replay_worker,
            args=(str(layout.data_dir), str(tmp_path), ROUNDS, start, done, results),
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        for round_no in range(ROUNDS):
            _round_file(layout, round_no)
            start.wait(timeout=300)
            done.wait(timeout=300)
            outcomes = [results.get(timeout=60) for _ in workers]
            raw = DeltaTable(layout.raw_uri("users")).to_pyarrow_table()
            identities = list(
                zip(
                    *(raw[c].to_pylist() for c in ("_source", "_source_line", "_batch_id")),
                    strict=True,
                )
            )
            assert len(identities) == len(set(identities)), "a record is in raw twice"
            expected = {
                1000 * (r + 1) + i for r in range(round_no + 1) for i in range(PLATINUM_ROWS)
            }
            assert sorted(raw["user_id"].to_pylist()) == sorted(expected)
            assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
            # Between them, the two replays moved each of this round's records once.
            assert sum(o[1] for o in outcomes) == PLATINUM_ROWS, outcomes
            dlq = DeltaTable(layout.dlq_uri("users")).to_pyarrow_table()
            assert sorted(dlq["_batch_id"].to_pylist()) == [f"r{r}" for r in range(round_no + 1)]
            assert all(reason.startswith("email:") for reason in dlq["reason"].to_pylist())
    finally:
        start.abort()  # a worker still waiting (the test failed early) stops waiting
        done.abort()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()


def _records_in_raw_once(layout: LakeLayout) -> list[int]:
    """The raw table's user ids, after asserting that no record identity is there twice."""
    raw = DeltaTable(layout.raw_uri("users")).to_pyarrow_table()
    identities = list(
        zip(*(raw[c].to_pylist() for c in ("_source", "_source_line", "_batch_id")), strict=True)
    )
    assert len(identities) == len(set(identities)), "a record is in raw twice"
    return sorted(raw["user_id"].to_pylist())


@pytest.mark.parametrize("step", ["replay.checked", "replay.raw_committed"])
def test_a_replay_that_commits_in_between_wins_and_the_other_moves_nothing(
    lake_layout: LakeLayout, tmp_path: Path, step: str
) -> None:
    """Replay B runs to its end at ``step`` of replay A: between A's "not in raw" check and its
    raw commit (A's raw commit then conflicts, A starts over on fresh snapshots and finds
    nothing left to move), or between A's raw commit and its dead-letter delete (B finds the
    records in raw and deletes them; A's delete finds them gone)."""
    _ingested(lake_layout)
    _round_file(lake_layout, 0)
    contract = _fixed_contract(tmp_path)
    others: list[ReplayResult] = []

    def interleave(at: str) -> None:
        if at == step and not others:
            others.append(replay_dead_letters(lake_layout, contract))

    with failpoint_hook(interleave):
        first = replay_dead_letters(lake_layout, contract)
    (other,) = others
    # Between the check and the raw commit, the raw commit loses its race and A starts over;
    # after it, A's delete reads the dead-letter table as B left it.
    assert first.attempts == (2 if step == "replay.checked" else 1)
    assert first.moved + other.moved == PLATINUM_ROWS + 1
    assert _records_in_raw_once(lake_layout) == sorted(
        [1, 2, *(1000 + i for i in range(PLATINUM_ROWS))]
    )
    # The records that still fail are in the dead-letter table once, not written back twice.
    assert _dlq_lines(lake_layout) == [3, 4, PLATINUM_ROWS + 1]


_KILLED_CHILD = """
import sys
from pathlib import Path
from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import LakeLayout
from assets_project.lib.replay import replay_dead_letters

data = Path(sys.argv[1])
layout = LakeLayout(data_dir=data, lake_uri=sys.argv[3], warehouse_path=data / "w.duckdb")
replay_dead_letters(layout, load_contract("users", Path(sys.argv[2])))
"""


@pytest.mark.parametrize(
    "step", ["replay.checked", "replay.raw_committed", "replay.dead_letter_committed"]
)
def test_kill_9_during_a_replay_then_a_replay_moves_each_record_once(
    lake_layout: LakeLayout, tmp_path: Path, step: str
) -> None:
    _ingested(lake_layout)
    _fixed_contract(tmp_path)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_CHILD,
            str(lake_layout.data_dir),
            str(tmp_path),
            lake_layout.lake_uri,
        ],
        env={**os.environ, FAILPOINT_ENV: step},
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    moved_before = {
        "replay.checked": [1],
        "replay.raw_committed": [1, 2],
        "replay.dead_letter_committed": [1, 2],
    }
    assert _records_in_raw_once(lake_layout) == moved_before[step]
    result = replay_dead_letters(lake_layout, load_contract("users", tmp_path))
    assert result.moved == (1 if step == "replay.checked" else 0)
    assert result.already_in_raw == (1 if step == "replay.raw_committed" else 0)
    assert _records_in_raw_once(lake_layout) == [1, 2]
    assert _dlq_lines(lake_layout) == [3, 4]


def test_delta_refuses_a_second_commit_with_the_same_app_id_on_a_stale_snapshot(
    tmp_path: Path,
) -> None:
    """The delta-rs behaviour the replay's exactly-once rests on (pinned against upgrades)."""
    schema = pa.schema([pa.field("x", pa.int64())])
    uri = str(tmp_path / "t")
    DeltaTable.create(uri, schema)
    first, second, other = DeltaTable(uri), DeltaTable(uri), DeltaTable(uri)  # one snapshot
    rows = pa.table({"x": [1]}, schema=schema)

    def commit(app_id: str) -> CommitProperties:
        return CommitProperties(app_transactions=[Transaction(app_id, 1)])

    write_deltalake(first, rows, mode="append", commit_properties=commit("replay:users"))
    with pytest.raises(CommitFailedError):
        write_deltalake(second, rows, mode="append", commit_properties=commit("replay:users"))
    # An append with another app id (a file ingestion's) does not conflict with it.
    write_deltalake(other, rows, mode="append", commit_properties=commit("file-abc"))
    assert DeltaTable(uri).to_pyarrow_table()["x"].to_pylist() == [1, 1]
