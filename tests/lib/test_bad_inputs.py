"""Bad inputs on disk, straight through the readers, the landing scan and ``ingest_file``.

Every case checks three things: the reason names the row (``_source_line``) and the field
(``reasons[].column``) of a rejected record, or the exception says why a whole file cannot be
taken (the Dagster asset then quarantines it, see tests/defs/ingestion/test_bad_inputs.py);
nothing is lost (records in the file = raw rows + dead-letter rows of that ``_source``); and
line numbers are right.

Decisions the cases pin down:

* A value that is not valid UTF-8 costs its row, not the file: the row goes to the dead-letter
  table with the reason ``<column>: not valid UTF-8 (byte 0xNN at offset N)`` and the record
  as text with the bad bytes written as ``\\xNN``. A header that is not UTF-8 fails the file.
* Parquet: a value that cannot be cast to the contract type (a text ``product_id`` of
  ``'abc'``) sends its row to the dead-letter table; a column whose *physical* type cannot hold
  the contract type at all (``updated_at`` stored as int64) fails the whole file, which is
  quarantined with ``column type changed: ...``. Text columns are always validated per value.
* ``_source_line`` is the data row for CSV (header, blank lines not counted; a quoted value over
  several lines is one row), the physical line for JSON lines, the row for Parquet.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

import assets_project.lib.readers as readers
from assets_project.lib.contracts import (
    RESERVED_COLUMNS,
    Column,
    Contract,
    is_reserved,
    load_contract,
)
from assets_project.lib.ingest import IngestResult, ingest_file
from assets_project.lib.lake import LakeLayout, lake_connection, raw_schema, register_delta
from assets_project.lib.landing import UnsafePathError, resolve_inside, scan
from assets_project.lib.readers import UnreadableFileError, open_file
from assets_project.lib.replay import replay_dead_letters

USERS_HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at"
PRODUCTS_HEADER = "product_id,name,category,unit_price,updated_at"
EVENT = (
    '{"event_id":"0a1b2c3d-0000-4000-8000-%012d","user_id":1,"event_type":"click",'
    '"event_timestamp":"2026-01-05T10:11:12Z","properties":{}}'
)


def user(n: int, email: str = "a@b.co", region: str = "europe") -> str:
    """A valid users row whose user_id is ``n`` (tests use n = its data row)."""
    return f"{n},{email},2026-01-01,free,{region},2026-01-02 10:00:00"


def _drop(layout: LakeLayout, source: str, name: str, data: bytes) -> Path:
    path = layout.landing_dir / source / name
    path.write_bytes(data)
    return path


def _rows(uri: str, source_file: str) -> list[dict]:
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    return sorted(
        (r for r in rows if r["_source"] == source_file), key=lambda r: r["_source_line"] or 0
    )


def _ingest(
    layout: LakeLayout,
    source: str,
    name: str,
    data: bytes,
    records: int,
    contract: Contract | None = None,
) -> tuple[IngestResult, list[dict], list[dict]]:
    """Ingest a dropped file; check that its ``records`` are all in raw or dead-letter."""
    path = _drop(layout, source, name, data)
    source_file = f"{source}/{name}"
    contract = contract or load_contract(source)
    result = ingest_file(path, contract, layout, source=source_file)
    raw = _rows(layout.raw_uri(source), source_file)
    dlq = _rows(layout.dlq_uri(source), source_file)
    assert result.rows_in == records
    assert len(raw) + len(dlq) == records, "a record was lost or duplicated"
    assert (result.rows_written, result.rows_rejected) == (len(raw), len(dlq))
    return result, raw, dlq


def _refused(layout: LakeLayout, source: str, name: str, data: bytes, match: str) -> str:
    """A whole-file problem: the reason matches, nothing is committed, the file is untouched."""
    path = _drop(layout, source, name, data)
    with pytest.raises(UnreadableFileError, match=match) as caught:
        ingest_file(path, load_contract(source), layout, source=f"{source}/{name}")
    assert path.read_bytes() == data
    for uri in (layout.raw_uri(source), layout.dlq_uri(source)):
        if Path(uri).exists():
            assert DeltaTable(uri).to_pyarrow_table().num_rows == 0
    return str(caught.value)


def _parquet(table: pa.Table) -> bytes:
    """The bytes of a Parquet file holding ``table``."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _only_reason(row: dict) -> dict:
    (reason,) = row["reasons"]
    return reason


# --- whole-file problems ------------------------------------------------------------------


def test_empty_file_is_refused(layout: LakeLayout) -> None:
    _refused(layout, "users", "empty.csv", b"", r"^file is empty: no header line$")
    _refused(layout, "users", "blank.csv", b"\r\n", r"^file is empty")
    # Like a CSV without a header, a JSON-lines file without a single byte is a failed export.
    _refused(layout, "user_events", "empty.jsonl", b"", r"^file is empty: no lines$")


def test_header_only_file_has_no_records_and_loses_nothing(layout: LakeLayout) -> None:
    result, raw, dlq = _ingest(layout, "users", "h.csv", f"{USERS_HEADER}\n".encode(), 0)
    assert raw == dlq == []
    assert not result.already_ingested


def test_semicolon_delimited_csv_is_refused_showing_the_header_as_read(
    layout: LakeLayout,
) -> None:
    data = f"{USERS_HEADER.replace(',', ';')}\n{user(1).replace(',', ';')}\n".encode()
    reason = _refused(layout, "users", "semi.csv", data, r"required column\(s\) missing")
    assert "(header: user_id;email;signup_date;user_tier;geographic_region;updated_at)" in reason


def test_duplicate_header_names_are_refused(layout: LakeLayout) -> None:
    data = f"{USERS_HEADER},email\n{user(1)},x@y.co\n".encode()
    _refused(layout, "users", "dup.csv", data, r"^duplicate column names in header: email$")


def test_missing_required_column_is_refused_and_named(layout: LakeLayout) -> None:
    header = USERS_HEADER.replace(",signup_date", "")
    row = user(1).replace(",2026-01-01,", ",", 1)
    _refused(
        layout,
        "users",
        "missing.csv",
        f"{header}\n{row}\n".encode(),
        r"^required column\(s\) missing from the header: signup_date \(header: user_id, email,",
    )


def test_header_that_is_not_utf8_is_refused_with_the_byte_offset(layout: LakeLayout) -> None:
    data = b"\xef\xbb\xbfuser_id,em\xe9il\n" + user(1).encode() + b"\n"
    _refused(
        layout,
        "users",
        "latin1.csv",
        data,
        r"^header is not valid UTF-8: byte 0xE9 at offset 13 of the file$",
    )


def test_truncated_parquet_is_refused(layout: LakeLayout, tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"product_id": [1, 2], "name": ["a", "b"]}), whole)
    data = whole.read_bytes()
    _refused(
        layout, "products", "cut.parquet", data[: len(data) // 2], "not a readable Parquet file"
    )


def _one_product(**extra: list) -> pa.Table:
    """A valid one-row products table, plus the ``extra`` columns."""
    return pa.table(
        {
            "product_id": [1],
            "name": ["Pen"],
            "category": ["books"],
            "unit_price": [1.5],
            "updated_at": [dt.datetime(2026, 1, 2, 10)],
            **extra,
        }
    )


def test_parquet_with_a_nested_column_is_refused_before_anything_is_read(
    layout: LakeLayout,
) -> None:
    table = _one_product(meta=[{"colour": "red"}])
    _refused(
        layout,
        "products",
        "nested.parquet",
        _parquet(table),
        r"^column meta of type struct<colour: string> cannot be read as text$",
    )


def _breaks_half_way(layout: LakeLayout, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A row longer than a parser block, after the first block: parsing fails mid-stream."""
    monkeypatch.setattr(readers, "BLOCK_SIZE", 1024)
    rows = [user(n) for n in range(1, 101)]
    rows[80] = user(81, email="x" * 5000 + "@b.co")
    return _drop(layout, "users", "long.csv", "\n".join([USERS_HEADER, *rows, ""]).encode())


def test_a_file_that_breaks_half_way_commits_nothing(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _breaks_half_way(layout, monkeypatch)
    data = path.read_bytes()
    with pytest.raises(Exception, match="cannot be parsed after row 80"):
        ingest_file(path, load_contract("users"), layout, source="users/long.csv")
    assert path.read_bytes() == data
    for uri in (layout.raw_uri("users"), layout.dlq_uri("users")):
        assert DeltaTable(uri).to_pyarrow_table().num_rows == 0


def test_a_file_that_breaks_half_way_raises_unreadable_file_error(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _breaks_half_way(layout, monkeypatch)
    with pytest.raises(UnreadableFileError, match="cannot be parsed after row 80"):
        ingest_file(path, load_contract("users"), layout, source="users/long.csv")


# --- row-level problems --------------------------------------------------------------------


def test_quoted_newlines_stay_in_the_value_and_rows_keep_their_numbers(
    layout: LakeLayout,
) -> None:
    data = (
        f"{PRODUCTS_HEADER}\n"
        '1,"Desk lamp\nwith ""shade"", large",home,19.99,2026-01-02 10:00:00\n'
        "2,Pen,books,abc,2026-01-02 10:00:00\n"
        '3,"Mug\r\n(blue)",home,5.00,2026-01-02 10:00:00\n'
    ).encode()
    _, raw, dlq = _ingest(layout, "products", "nl.csv", data, 3)
    assert [(r["_source_line"], r["name"]) for r in raw] == [
        (1, 'Desk lamp\nwith "shade", large'),
        (3, "Mug\r\n(blue)"),
    ]
    (rejected,) = dlq
    assert rejected["_source_line"] == 2
    assert _only_reason(rejected) == {
        "column": "unit_price",
        "rule": "not a valid decimal(12,2)",
        "value": "abc",
    }


def test_crlf_line_endings_leave_no_carriage_return_in_the_last_column(
    layout: LakeLayout,
) -> None:
    """geographic_region is last and an enum: a trailing '\\r' would reject every row."""
    header = "user_id,email,signup_date,user_tier,updated_at,geographic_region"
    rows = [
        "1,a@b.co,2026-01-01,free,2026-01-02 10:00:00,europe",
        "2,a@b.co,2026-01-01,free,2026-01-02 10:00:00,europe,surplus",
        "3,a@b.co,2026-01-01,free,2026-01-02 10:00:00,mars",
        "4,a@b.co,2026-01-01,free,2026-01-02 10:00:00,asia_pacific",
    ]
    data = "\r\n".join([header, *rows]).encode() + b"\r\n"
    assert open_file(_drop(layout, "users", "probe.csv", data)).columns[-1] == "geographic_region"
    _, raw, dlq = _ingest(layout, "users", "crlf.csv", data, 4)
    assert [(r["_source_line"], r["geographic_region"]) for r in raw] == [
        (1, "europe"),
        (4, "asia_pacific"),
    ]
    by_line = {r["_source_line"]: r for r in dlq}
    assert by_line[2]["reason"] == "row has 7 fields, header has 6"
    assert by_line[2]["record"] == rows[1]
    assert _only_reason(by_line[3])["column"] == "geographic_region"
    assert _only_reason(by_line[3])["value"] == "mars"
    assert all("\r" not in (r["record"] or "") for r in dlq)


def test_utf8_bom_does_not_stick_to_the_first_column_name(layout: LakeLayout) -> None:
    data = ("\ufeff" + f"{USERS_HEADER}\r\n{user(1)}\r\n{user(2)}\r\n").encode()
    path = _drop(layout, "users", "probe.csv", data)
    assert open_file(path).columns[0] == "user_id"
    _, raw, _ = _ingest(layout, "users", "bom.csv", data, 2)
    assert [(r["_source_line"], r["user_id"]) for r in raw] == [(1, 1), (2, 2)]


def test_utf8_bom_and_crlf_in_json_lines(layout: LakeLayout) -> None:
    data = ("\ufeff" + EVENT % 1 + "\r\n" + EVENT % 2 + "\r\n").encode()
    _, raw, _ = _ingest(layout, "user_events", "bom.jsonl", data, 2)
    assert [r["_source_line"] for r in raw] == [1, 2]


def test_invalid_utf8_sends_only_that_row_to_the_dead_letter_table(layout: LakeLayout) -> None:
    data = b"\n".join(
        [
            USERS_HEADER.encode(),
            user(1).encode(),
            b"2,x\xff\xfe@b.co,2026-01-01,free,europe,2026-01-02 10:00:00",
            user(3).encode(),
            b"4,a@b.co,2026-01-01,free,\xc3(urope,2026-01-02 10:00:00",
            b"",
        ]
    )
    _, raw, dlq = _ingest(layout, "users", "bytes.csv", data, 4)
    assert [(r["_source_line"], r["user_id"]) for r in raw] == [(1, 1), (3, 3)]
    assert [(r["_source_line"], r["reason"]) for r in dlq] == [
        (2, "email: not valid UTF-8 (byte 0xFF at offset 1)"),
        (4, "geographic_region: not valid UTF-8 (byte 0xC3 at offset 0)"),
    ]
    assert dlq[0]["record"] == r"2,x\xff\xfe@b.co,2026-01-01,free,europe,2026-01-02 10:00:00"
    # The record is text, not a JSON object: a replay must not load the escapes as data.
    replayed = replay_dead_letters(layout, load_contract("users"))
    assert (replayed.moved, replayed.still_rejected) == (0, 2)


def test_invalid_utf8_reason_names_the_column_in_reasons(layout: LakeLayout) -> None:
    data = f"{USERS_HEADER}\n".encode() + b"1,x\xff@b.co,2026-01-01,free,europe,2026-01-02\n"
    _, _, (rejected,) = _ingest(layout, "users", "bytes.csv", data, 1)
    assert _only_reason(rejected)["column"] == "email"


def test_invalid_utf8_in_a_later_batch_and_json_lines(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks: the bad row sits in a later batch, after rows the parser skipped."""
    monkeypatch.setattr(readers, "BLOCK_SIZE", 256)
    lines = [user(n).encode() for n in range(1, 41)]
    lines[4] += b",surplus"  # row 5: unsplittable
    lines[29] = lines[29].replace(b"a@b.co", b"a\x80@b.co")  # row 30: not UTF-8
    data = b"\n".join([USERS_HEADER.encode(), *lines]) + b"\n"
    _, raw, dlq = _ingest(layout, "users", "late.csv", data, 40)
    assert all(r["user_id"] == r["_source_line"] for r in raw)
    assert [(r["_source_line"], r["reason"].split(" (")[0]) for r in dlq] == [
        (5, "row has 7 fields, header has 6"),
        (30, "email: not valid UTF-8"),
    ]

    events = [EVENT % n for n in range(1, 6)]
    data = "\n".join(events[:2]).encode() + b"\n" + b'{"event_id":"\xe2\x82"}\n'
    data += "\n".join(events[3:]).encode() + b"\n"
    _, raw, dlq = _ingest(layout, "user_events", "bytes.jsonl", data, 5)
    assert [r["_source_line"] for r in raw] == [1, 2, 4, 5]
    assert [(r["_source_line"], r["reason"]) for r in dlq] == [
        (3, "line is not valid UTF-8 (byte 0xE2 at offset 13)")
    ]


def test_a_row_both_unsplittable_and_not_utf8_fails_the_file(layout: LakeLayout) -> None:
    """A known limit: pyarrow decodes an unsplittable row's text strictly before handing it
    to the reader, so such a row fails the whole file (quarantined) instead of one dead letter.
    The reason names the row as pyarrow counts rows (the header is row 1)."""
    data = b"\n".join(
        [
            USERS_HEADER.encode(),
            user(1).encode(),
            b"2,x\xff@b.co,2026-01-01,free,europe,2026-01-02 10:00:00,surplus",
            b"",
        ]
    )
    _refused(
        layout, "users", "both.csv", data, r"^cannot be parsed: CSV parse error: Row #3: Expected"
    )


def test_every_record_keeps_its_own_line_across_batches(
    layout: LakeLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """user_id = data row; rows the parser skips in any batch must not shift later rows."""
    monkeypatch.setattr(readers, "BLOCK_SIZE", 512)
    bad = {3, 4, 17, 18, 19, 60, 119, 120}
    lines = [user(n) + (",x" if n in bad else "") for n in range(1, 121)]
    lines.insert(10, "")  # a blank line is not a record
    data = ("\n".join([USERS_HEADER, *lines]) + "\n").encode()
    _, raw, dlq = _ingest(layout, "users", "many.csv", data, 120)
    assert all(r["user_id"] == r["_source_line"] for r in raw)
    assert [r["_source_line"] for r in dlq] == sorted(bad)
    assert all(r["record"].startswith(f"{r['_source_line']},") for r in dlq)


def test_extra_and_missing_optional_columns(layout: LakeLayout) -> None:
    data = f"{USERS_HEADER},referral_code\n{user(1)},SPRING\n".encode()
    result, raw, _ = _ingest(layout, "users", "extra.csv", data, 1)
    assert result.new_columns == ("referral_code",)
    assert raw[0]["referral_code"] == "SPRING"

    users = load_contract("users")
    nickname = Column(name="nickname", type="varchar", description="Optional.", max_length=5)
    with_optional = users.model_copy(update={"columns": (*users.columns, nickname)})
    data = f"{USERS_HEADER}\n{user(2)}\n".encode()
    _, raw, _ = _ingest(layout, "users", "no_opt.csv", data, 1, contract=with_optional)
    assert raw[0]["nickname"] is None


def test_json_lines_missing_optional_and_required_fields(layout: LakeLayout) -> None:
    no_properties = (EVENT % 1).replace(',"properties":{}', "")
    no_type = (EVENT % 2).replace('"event_type":"click",', "")
    data = f"{no_properties}\n{no_type}\n".encode()
    _, raw, dlq = _ingest(layout, "user_events", "fields.jsonl", data, 2)
    assert [(r["_source_line"], r["properties"]) for r in raw] == [(1, None)]
    assert dlq[0]["_source_line"] == 2
    assert _only_reason(dlq[0]) == {
        "column": "event_type",
        "rule": "required value is missing",
        "value": None,
    }


def test_ten_megabyte_csv_field_and_json_line(layout: LakeLayout) -> None:
    huge = "x" * 10_000_000
    data = (
        f"{PRODUCTS_HEADER}\n"
        "1,Pen,books,1.00,2026-01-02 10:00:00\n"
        f"2,{huge},books,1.00,2026-01-02 10:00:00\n"
        "3,Mug,home,5.00,2026-01-02 10:00:00\n"
    ).encode()
    _, raw, dlq = _ingest(layout, "products", "huge.csv", data, 3)
    assert [r["_source_line"] for r in raw] == [1, 3]
    (rejected,) = dlq
    assert rejected["_source_line"] == 2
    assert _only_reason(rejected)["column"] == "name"
    assert _only_reason(rejected)["rule"] == "longer than 200"
    assert huge in rejected["record"]  # the whole value is kept, only the preview is cut
    assert len(_only_reason(rejected)["value"]) == 200

    big_event = (EVENT % 2).replace('"properties":{}', f'"properties":{{"blob":"{huge}"}}')
    data = "\n".join([EVENT % 1, big_event, EVENT % 3]).encode() + b"\n"
    _, raw, _ = _ingest(layout, "user_events", "huge.jsonl", data, 3)
    assert [r["_source_line"] for r in raw] == [1, 2, 3]
    assert json.loads(raw[1]["properties"])["blob"] == huge


def test_json_lines_that_are_not_objects(layout: LakeLayout) -> None:
    lines = [EVENT % 1, "[1,2]", '"text"', "42", "null", "{broken", "", "a\x1fb", EVENT % 9]
    data = ("\n".join(lines) + "\n").encode()
    _, raw, dlq = _ingest(layout, "user_events", "objects.jsonl", data, 8)
    assert [r["_source_line"] for r in raw] == [1, 9]
    assert [(r["_source_line"], r["record"]) for r in dlq] == [
        (2, "[1,2]"),
        (3, '"text"'),
        (4, "42"),
        (5, "null"),
        (6, "{broken"),
        (8, "a\x1fb"),
    ]
    for row in dlq:
        assert _only_reason(row)["column"] is None
        assert _only_reason(row)["rule"] == "line is not a JSON object"


def _not_utf8_strings(values: list[bytes]) -> pa.Array:
    """A Parquet string column as a writer that does not check UTF-8 would store it."""
    as_bytes = pa.array(values, pa.binary())
    return pa.Array.from_buffers(pa.string(), len(as_bytes), as_bytes.buffers())


def test_parquet_values_that_do_not_cast_go_to_the_dead_letter_table(layout: LakeLayout) -> None:
    table = pa.table(
        {
            "product_id": ["1", "abc", "3", "4"],
            "name": _not_utf8_strings([b"Pen", b"Mug", b"Cup", b"B\xffwl"]),
            "category": ["books", "home", "home", "home"],
            "unit_price": [1.5, 2.0, 3.0, 4.0],
            "updated_at": [dt.datetime(2026, 1, 2, 10)] * 4,
        }
    )
    data = _parquet(table)
    _, raw, dlq = _ingest(layout, "products", "text.parquet", data, 4)
    assert [(r["_source_line"], r["product_id"]) for r in raw] == [(1, 1), (3, 3)]
    assert [r["_source_line"] for r in dlq] == [2, 4]
    assert _only_reason(dlq[0]) == {
        "column": "product_id",
        "rule": "not a valid bigint",
        "value": "abc",
    }
    assert dlq[1]["reason"] == "name: not valid UTF-8 (byte 0xFF at offset 1)"
    assert dlq[1]["record"] == r"4,B\xffwl,home,4,2026-01-02 10:00:00.000000"


def test_parquet_with_an_incompatible_physical_type_is_refused(layout: LakeLayout) -> None:
    table = pa.table(
        {
            "product_id": [1],
            "name": ["Pen"],
            "category": ["books"],
            "unit_price": [1.5],
            "updated_at": pa.array([1_767_348_000_000_000], pa.int64()),
        }
    )
    _refused(
        layout,
        "products",
        "epoch.parquet",
        _parquet(table),
        r"^column type changed: updated_at is int64 in the file, the contract says timestamp$",
    )


def test_file_name_with_spaces_and_unicode(layout: LakeLayout) -> None:
    name = "users 2026 \u2013 \u00fc.csv"  # an en dash and a u-umlaut
    _, raw, _ = _ingest(layout, "users", name, f"{USERS_HEADER}\n{user(1)}\n".encode(), 1)
    assert raw[0]["_source"] == f"users/{name}"
    (drop,) = scan(layout.landing_dir / "users", settle_seconds=0, now=time.time() + 60)[0]
    assert drop.relative == f"users/{name}"


# --- the landing folder ------------------------------------------------------------------------


def test_symlink_and_dotdot_outside_the_landing_folder_are_never_read(
    layout: LakeLayout, tmp_path: Path
) -> None:
    folder = layout.landing_dir / "users"
    secret = tmp_path / "secret.csv"
    secret.write_text(f"{USERS_HEADER}\n{user(1)}\n")
    other = layout.landing_dir / "orders" / "o.csv"
    other.write_text("order_id\n1\n")
    (folder / "link.csv").symlink_to(secret)
    (folder / "sideways.csv").symlink_to(other)
    (folder / "dir").symlink_to(tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (secret, other)}

    ready, notes = scan(folder, settle_seconds=0)
    assert ready == []
    assert sorted(n.split(" resolves")[0] for n in notes) == [
        "not read: dir",
        "not read: link.csv",
        "not read: sideways.csv",
    ]
    for candidate in ("../../secret.csv", "../orders/o.csv", "link.csv", str(secret)):
        with pytest.raises(UnsafePathError, match="outside"):
            resolve_inside(folder, candidate)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    assert not Path(layout.raw_uri("users")).exists()


def test_file_still_being_written_is_not_picked_up(layout: LakeLayout) -> None:
    folder = layout.landing_dir / "users"
    now = time.time()
    growing = folder / "growing.csv"
    growing.write_text(f"{USERS_HEADER}\n{user(1)}\n")
    for name in ("upload.csv.part", "upload.csv.tmp", ".upload.csv"):
        (folder / name).write_text(USERS_HEADER)
        os.utime(folder / name, (now - 600, now - 600))
    ready, notes = scan(folder, settle_seconds=30, now=now)
    assert ready == []
    assert len(notes) == 1 and notes[0].startswith("growing.csv: modified")
    assert "still settling" in notes[0]
    os.utime(growing, (now - 31, now - 31))
    ready, notes = scan(folder, settle_seconds=30, now=now)
    assert [d.relative for d in ready] == ["users/growing.csv"]
    assert notes == []


# --- values the lake's readers cannot hold -------------------------------------------------

OUT_OF_RANGE = "outside the supported range 0001-01-01..9999-12-31"


def _readable_by_every_reader(uri: str) -> int:
    """The whole table as pyarrow and DuckDB read it (both convert every value); its rows."""
    table = DeltaTable(uri)
    rows = table.to_pyarrow_table().to_pylist()
    with lake_connection() as connection:
        register_delta(connection, "t", table)
        assert len(connection.sql("SELECT * FROM t").fetchall()) == len(rows)
    return len(rows)


def _reasons(dlq: list[dict]) -> dict[int, set[tuple[str, str]]]:
    return {r["_source_line"]: {(x["column"], x["rule"]) for x in r["reasons"]} for r in dlq}


def test_out_of_range_dates_and_timestamps_in_csv_go_to_the_dead_letter_table(
    layout: LakeLayout,
) -> None:
    rows = [
        user(1),
        "2,a@b.co,2026-01-01,free,europe,infinity",
        "3,a@b.co,2026-01-01,free,europe,-infinity",
        "4,a@b.co,2026-01-01,free,europe,10000-01-01 00:00:00",
        "5,a@b.co,-2026-01-05,free,europe,2026-01-02 10:00:00",
        "6,a@b.co,2026-01-05 BC,free,europe,2026-01-02 10:00:00",
        "7,a@b.co,epoch,free,europe,2026-01-02 10:00:00",
        "8,a@b.co,2026-01-01,free,europe,9999-12-31T23:30:00-01:00",
        "9,a@b.co,0001-01-01,free,europe,9999-12-31 23:59:59.999999",
        "10,a@b.co,9999-12-31,free,europe,0001-01-01 00:00:00",
    ]
    data = "\n".join([USERS_HEADER, *rows, ""]).encode()
    _, raw, dlq = _ingest(layout, "users", "range.csv", data, 10)
    assert [r["_source_line"] for r in raw] == [1, 9, 10]
    assert _reasons(dlq) == {
        2: {("updated_at", OUT_OF_RANGE)},
        3: {("updated_at", OUT_OF_RANGE)},
        4: {("updated_at", OUT_OF_RANGE)},
        5: {("signup_date", OUT_OF_RANGE)},
        6: {("signup_date", OUT_OF_RANGE)},
        7: {("signup_date", "not a valid date")},
        8: {("updated_at", OUT_OF_RANGE)},
    }
    assert json.loads(dlq[0]["record"])["updated_at"] == "infinity"
    assert _readable_by_every_reader(layout.raw_uri("users")) == 3
    assert _readable_by_every_reader(layout.dlq_uri("users")) == 7


def test_out_of_range_values_in_json_lines_go_to_the_dead_letter_table(
    layout: LakeLayout,
) -> None:
    def event(n: int, timestamp: str, amount: str = "1") -> str:
        return (
            (EVENT % n)
            .replace("2026-01-05T10:11:12Z", timestamp)
            .replace('"properties":{}', f'"properties":{{"amount":{amount}}}')
        )

    lines = [
        event(1, "2026-01-05T10:11:12Z"),
        event(2, "infinity"),
        event(3, "-infinity"),
        event(4, "10000-01-01T00:00:00Z"),
        event(5, "-2026-01-05T10:00:00Z"),
        event(6, "epoch"),
        event(7, "2026-01-05T10:11:12Z", "12.345"),
        event(8, "2026-01-05T10:11:12Z", "-0.001"),
    ]
    _, raw, dlq = _ingest(layout, "user_events", "range.jsonl", "\n".join(lines).encode(), 8)
    assert [r["_source_line"] for r in raw] == [1]
    fraction = ("amount", "more than 2 digits after the decimal point")
    assert _reasons(dlq) == {
        2: {("event_timestamp", OUT_OF_RANGE)},
        3: {("event_timestamp", OUT_OF_RANGE)},
        4: {("event_timestamp", OUT_OF_RANGE)},
        5: {("event_timestamp", OUT_OF_RANGE)},
        6: {("event_timestamp", "not a valid timestamp")},
        7: {fraction},
        8: {fraction, ("amount", "below minimum 0")},
    }
    assert _readable_by_every_reader(layout.raw_uri("user_events")) == 1


def test_decimals_in_csv_are_rejected_not_rounded(layout: LakeLayout) -> None:
    prices = ["19.99", "12.345", "-0.001", "12345678901.00", "7.500"]
    rows = [f"{n},Pen,books,{p},2026-01-02 10:00:00" for n, p in enumerate(prices, start=1)]
    data = "\n".join([PRODUCTS_HEADER, *rows, ""]).encode()
    _, raw, dlq = _ingest(layout, "products", "prices.csv", data, 5)
    assert [(r["_source_line"], str(r["unit_price"])) for r in raw] == [(1, "19.99"), (5, "7.50")]
    fraction = ("unit_price", "more than 2 digits after the decimal point")
    assert _reasons(dlq) == {
        2: {fraction},
        3: {fraction, ("unit_price", "below minimum 0")},
        4: {
            ("unit_price", "more than 10 digits before the decimal point"),
            ("unit_price", "above maximum 100000"),
        },
    }


def test_parquet_temporal_and_decimal_values_out_of_range_go_to_the_dead_letter_table(
    layout: LakeLayout,
) -> None:
    """Typed Parquet columns are read as text, so their values meet the same rules."""
    micros = [
        1_767_348_000_000_000,  # 2026-01-02 10:00
        253_402_300_800_000_000,  # 10000-01-01
        -62_135_596_800_000_001,  # a microsecond before 0001-01-01
        2**62,  # beyond what pyarrow can even print
        253_402_300_799_999_999,  # 9999-12-31 23:59:59.999999
    ]
    products = pa.table(
        {
            "product_id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "name": ["Pen"] * 5,
            "category": ["books"] * 5,
            "unit_price": pa.array(
                [
                    Decimal("1.500"),
                    Decimal("2.000"),
                    Decimal("3.000"),
                    Decimal("4.000"),
                    Decimal("12.345"),
                ],
                pa.decimal128(12, 3),
            ),
            "updated_at": pa.array(micros, pa.timestamp("us")),
        }
    )
    data = _parquet(products)
    _, raw, dlq = _ingest(layout, "products", "range.parquet", data, 5)
    assert [(r["_source_line"], str(r["unit_price"])) for r in raw] == [(1, "1.50")]
    assert _reasons(dlq) == {
        2: {("updated_at", OUT_OF_RANGE)},
        3: {("updated_at", OUT_OF_RANGE)},
        4: {("updated_at", "not a valid timestamp")},
        5: {("unit_price", "more than 2 digits after the decimal point")},
    }
    assert _readable_by_every_reader(layout.raw_uri("products")) == 1

    days = [20_455, 2_932_897, -719_163, 2**31 - 1]  # 2026-01-02, 10000-01-01, 0000-12-31
    users = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4], pa.int64()),
            "email": ["a@b.co"] * 4,
            "signup_date": pa.array(days, pa.date32()),
            "user_tier": ["free"] * 4,
            "geographic_region": ["europe"] * 4,
            "updated_at": [dt.datetime(2026, 1, 2, 10)] * 4,
        }
    )
    data = _parquet(users)
    _, raw, dlq = _ingest(layout, "users", "range.parquet", data, 4)
    assert [(r["_source_line"], r["signup_date"]) for r in raw] == [(1, dt.date(2026, 1, 2))]
    assert _reasons(dlq) == {
        2: {("signup_date", OUT_OF_RANGE)},
        3: {("signup_date", OUT_OF_RANGE)},
        4: {("signup_date", "not a valid date")},
    }
    assert _readable_by_every_reader(layout.raw_uri("users")) == 1


# --- column names the lake uses itself -----------------------------------------------------

# Every name the raw table's metadata or the validation query uses, and variants DuckDB (whose
# identifiers ignore case) takes for the same column.
COLLIDING_NAMES = [
    *sorted(RESERVED_COLUMNS),
    "__original_0",
    "__original_6",
    "_Source_Line",
    "_RECORD",
]


def test_every_internal_column_name_is_reserved() -> None:
    assert {f.name for f in raw_schema(load_contract("users"))} - {
        c.name for c in load_contract("users").columns
    } <= RESERVED_COLUMNS
    assert {"_line_text", "_record", "_reasons", "_parse_ok", "_values"} <= RESERVED_COLUMNS
    assert all(is_reserved(name) for name in COLLIDING_NAMES)
    assert not any(is_reserved(name) for name in ("source", "record", "_note", "a__b"))


@pytest.mark.parametrize("name", COLLIDING_NAMES)
def test_a_csv_header_with_a_reserved_name_is_refused(layout: LakeLayout, name: str) -> None:
    data = f"{USERS_HEADER},{name}\n{user(1)},x\n2,bad,2026-01-01,free,europe,2026-01-02,y\n"
    reason = _refused(layout, "users", "clash.csv", data.encode(), "reserved")
    assert reason == (
        f"column name(s) reserved for the lake's own columns: {name} (rename the column)"
    )


@pytest.mark.parametrize("name", COLLIDING_NAMES)
def test_a_parquet_column_with_a_reserved_name_is_refused(layout: LakeLayout, name: str) -> None:
    table = _one_product(**{name: ["x"]})
    data = _parquet(table)
    reason = _refused(layout, "products", "clash.parquet", data, "reserved")
    assert name in reason


def test_header_names_that_differ_only_in_case_are_duplicates(layout: LakeLayout) -> None:
    """DuckDB identifiers ignore case: Email and email would read the same column."""
    data = f"{USERS_HEADER},Email\n{user(1)},x@y.co\n".encode()
    _refused(layout, "users", "case.csv", data, r"^duplicate column names in header: email$")
    table = pa.table({"product_id": [1], "Product_ID": [2]})
    _refused(
        layout, "products", "case.parquet", _parquet(table), r"^duplicate column names: product_id$"
    )


def test_json_keys_named_like_internal_columns_are_carried_as_they_are(
    layout: LakeLayout,
) -> None:
    """A JSON line is validated by path: other keys, whatever their names, stay in the line."""
    extra = ',"_record":"r","_reasons":[],"_source_line":99,"_values":1,"__original_0":"o"}'
    good = (EVENT % 1)[:-1] + extra
    bad = (EVENT % 2).replace('"click"', '"hover"')[:-1] + extra
    _, raw, dlq = _ingest(layout, "user_events", "keys.jsonl", f"{good}\n{bad}\n".encode(), 2)
    assert [(r["_source_line"], r["event_type"]) for r in raw] == [(1, "click")]
    assert [(r["_source_line"], r["record"]) for r in dlq] == [(2, bad)]
