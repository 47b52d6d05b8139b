from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

import assets_project.lib.ingest as ingest_module
from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import FileChangedError, ingest_file
from assets_project.lib.lake import LakeLayout
from assets_project.lib.readers import UnreadableFileError
from tests.writers import append_after_the_last_batch

HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROWS = (
    "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    "2,bad-email,2026-01-01,gold,europe,2026-01-02 10:00:00\n"
    '3,"c@d.co",2026-01-01,basic,asia_pacific,2026-01-03 00:00:00,surplus\n'
    "4,e@f.co,2026-01-05,premium,europe,2026-01-06 11:00:00\n"
)


def _drop(layout: LakeLayout, name: str, text: str) -> Path:
    path = layout.landing_dir / "users" / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(uri: str) -> list[dict]:
    return DeltaTable(uri).to_pyarrow_table().to_pylist()


def test_rows_in_equal_raw_plus_dead_letter(layout: LakeLayout) -> None:
    path = _drop(layout, "u.csv", HEADER + ROWS)
    result = ingest_file(path, load_contract("users"), layout, source="users/u.csv", batch_id="b1")
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (4, 2, 2)
    raw = _rows(layout.raw_uri("users"))
    dlq = _rows(layout.dlq_uri("users"))
    assert sorted(r["user_id"] for r in raw) == [1, 4]
    assert {r["_source"] for r in raw + dlq} == {"users/u.csv"}
    assert {r["_batch_id"] for r in raw + dlq} == {"b1"}
    # users partition by the year of updated_at (2026-01-02 and 2026-01-06 here)
    assert {str(r["_partition_date"]) for r in raw} == {"2026-01-01"}
    reasons = {r["_source_line"]: r["reason"] for r in dlq}
    assert reasons[2].startswith("email: does not match")
    assert "user_tier: not one of" in reasons[2]
    surplus = next(r for r in dlq if "surplus" in r["record"])
    assert surplus["reason"] == "row has 7 fields, header has 6"


def test_same_content_is_never_appended_twice(layout: LakeLayout) -> None:
    contract = load_contract("users")
    first = _drop(layout, "u.csv", HEADER + ROWS)
    ingest_file(first, contract, layout, source="users/u.csv")
    again = _drop(layout, "u_copy.csv", HEADER + ROWS)
    result = ingest_file(again, contract, layout, source="users/u_copy.csv")
    assert result.already_ingested
    assert len(_rows(layout.raw_uri("users"))) == 2
    assert len(_rows(layout.dlq_uri("users"))) == 2


def test_crash_between_raw_and_dead_letter_commit_recovers_exactly_once(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead-letter commit fails once (injected); the retry adds only the dead letters."""
    contract = load_contract("users")
    path = _drop(layout, "u.csv", HEADER + ROWS)
    real_write = ingest_module.write_deltalake
    calls = {"n": 0}

    def failing_second_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("injected crash before the dead-letter commit")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "write_deltalake", failing_second_write)
    with pytest.raises(OSError, match="injected"):
        ingest_file(path, contract, layout, source="users/u.csv")
    assert len(_rows(layout.raw_uri("users"))) == 2
    assert len(_rows(layout.dlq_uri("users"))) == 0
    result = ingest_file(path, contract, layout, source="users/u.csv")
    assert not result.already_ingested
    assert len(_rows(layout.raw_uri("users"))) == 2
    assert len(_rows(layout.dlq_uri("users"))) == 2
    assert ingest_file(path, contract, layout, source="users/u.csv").already_ingested


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("user_id;email;signup_date\n1;a@b.co;2026-01-01\n", "required column(s) missing"),
        ("user_id,user_id,email\n", "duplicate column names"),
    ],
)
def test_unreadable_files_raise_with_reason(layout: LakeLayout, text: str, message: str) -> None:
    path = _drop(layout, "bad.csv", text)
    with pytest.raises(UnreadableFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_file(path, load_contract("users"), layout, source="users/bad.csv")


def test_json_lines_keep_line_numbers_and_blank_lines_are_not_records(layout: LakeLayout) -> None:
    good = (
        '{"event_id":"0a1b2c3d-0000-4000-8000-00000000000%d","user_id":1,"event_type":"click",'
        '"event_timestamp":"2026-01-05T10:11:12Z","properties":{}}'
    )
    text = "\n".join([good % 1, "", "not json", good % 2, "[1]"]) + "\n"
    path = layout.landing_dir / "user_events" / "e.jsonl"
    path.write_text(text, encoding="utf-8")
    result = ingest_file(path, load_contract("user_events"), layout, source="user_events/e.jsonl")
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (4, 2, 2)
    raw = _rows(layout.raw_uri("user_events"))
    assert sorted(r["_source_line"] for r in raw) == [1, 4]
    dlq = _rows(layout.dlq_uri("user_events"))
    assert sorted(r["_source_line"] for r in dlq) == [3, 5]


def _versions(layout: LakeLayout) -> tuple[int, int]:
    return (
        DeltaTable(layout.raw_uri("users")).version(),
        DeltaTable(layout.dlq_uri("users")).version(),
    )


def test_file_that_grows_while_read_commits_nothing_then_is_ingested_whole_once(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer appends after the reader has read every batch, before the commits."""
    contract = load_contract("users")
    ingest_file(_drop(layout, "seed.csv", HEADER + ROWS), contract, layout, source="users/s.csv")
    before = _versions(layout)
    first_half = HEADER + "5,g@h.co,2026-01-01,free,europe,2026-01-02 10:00:00\nbroken\n"
    rest = "6,i@j.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    path = _drop(layout, "u.csv", first_half)
    append_after_the_last_batch(monkeypatch, path, rest)  # read, not yet committed
    with pytest.raises(FileChangedError, match="changed while it was read"):
        ingest_file(path, contract, layout, source="users/u.csv")
    assert _versions(layout) == before  # neither the raw nor the dead-letter commit happened
    monkeypatch.undo()

    result = ingest_file(path, contract, layout, source="users/u.csv")
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (3, 2, 1)
    raw = [r for r in _rows(layout.raw_uri("users")) if r["_source"] == "users/u.csv"]
    assert sorted(r["user_id"] for r in raw) == [5, 6]
    assert ingest_file(path, contract, layout, source="users/u.csv").already_ingested
    assert _versions(layout) == (before[0] + 1, before[1] + 1)


def test_reader_error_from_a_file_rewritten_while_read_is_a_change_not_a_bad_file(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer truncates and rewrites the file between the hash and the read: the reader
    sees an empty file, but the file is not empty, it is changing (so it is not quarantined)."""
    contract = load_contract("users")
    path = _drop(layout, "u.csv", HEADER + ROWS)
    real_open_file = ingest_module.open_file

    def truncated_first(opened_path: Path):
        opened_path.write_text("", encoding="utf-8")
        return real_open_file(opened_path)

    monkeypatch.setattr(ingest_module, "open_file", truncated_first)
    with pytest.raises(FileChangedError) as caught:
        ingest_file(path, contract, layout, source="users/u.csv")
    assert isinstance(caught.value.__cause__, UnreadableFileError)
    assert _versions(layout) == (0, 0)  # the empty tables ingest_file created, nothing more
