"""Tests of the demo data generator: determinism, layout, manifest and contract conformance.

The checks read the written files back and validate every row against the source contracts
(``assets_project/contracts/*.yml``) with a small, strict validator of their own, so the counts in
``_manifest.json`` are checked against what really is in the files.
"""

from __future__ import annotations

import csv
import importlib
import itertools
import json
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from assets_project.demo.generate import (
    BASE_S,
    END_S,
    INVALID_KINDS,
    SOURCE_DEFECTS,
    SOURCES,
    GenerationReport,
    Scale,
    generate,
)
from assets_project.lib.contracts import Column, Contract, load_contract

gen_module = importlib.import_module("assets_project.demo.generate")

SIZE, SEED, FILES = 500, 3, 2
CSV_TS = "%Y-%m-%d %H:%M:%S"
EVENT_TS = "%Y-%m-%dT%H:%M:%SZ"
EXPECTED_KINDS = {
    "users": {
        "duplicate_in_file",
        "duplicate_across_files",
        "null_required",
        "wrong_type",
        "out_of_range",
        "bad_pattern",
        "unknown_enum",
    },
    "products": {
        "duplicate_in_file",
        "duplicate_across_files",
        "null_required",
        "wrong_type",
        "out_of_range",
        "unknown_enum",
    },
    "orders": {
        "duplicate_in_file",
        "duplicate_across_files",
        "null_required",
        "wrong_type",
        "out_of_range",
        "unknown_enum",
    },
    "user_events": {
        "duplicate_in_file",
        "duplicate_across_files",
        "null_required",
        "wrong_type",
        "out_of_range",
        "bad_pattern",
        "unknown_enum",
        "late_event",
        "malformed_json",
        "non_object_json",
    },
}
NEXT_STATUS = {
    "pending": {"paid", "cancelled"},
    "paid": {"shipped", "cancelled"},
    "shipped": {"delivered"},
    "delivered": {"returned"},
}


# --------------------------------------------------------------------------- a strict validator

_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


def _parse_time(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return None


def _value_ok(column: Column, value: Any, *, json_source: bool) -> bool:
    """Whether one value satisfies the column's type and rules (``None`` is a null)."""
    if value is None or (value == "" and not json_source):
        return not column.required
    kind = column.type
    number: float | None = None
    if kind in ("bigint", "integer"):
        if json_source:
            if not isinstance(value, int) or isinstance(value, bool):
                return False
            number = value
        else:
            if not _INT.match(value):
                return False
            number = int(value)
    elif (match := _DECIMAL.match(kind)) is not None:
        scale = int(match.group(2))
        if json_source:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return False
            number = float(value)
            if not math.isclose(round(number, scale), number, abs_tol=1e-9):
                return False
        else:
            if not re.fullmatch(rf"-?\d+(\.\d{{1,{scale}}})?", value):
                return False
            number = float(value)
    elif kind == "timestamp":
        fmt = EVENT_TS if json_source else CSV_TS
        return isinstance(value, str) and _parse_time(value, fmt) is not None
    elif kind == "date":
        return isinstance(value, str) and _parse_time(value, "%Y-%m-%d") is not None
    elif kind == "varchar":
        if not isinstance(value, str):
            return False
        if column.enum is not None and value not in column.enum:
            return False
        if column.regex is not None and not re.search(column.regex, value):
            return False
        return column.max_length is None or len(value) <= column.max_length
    elif kind == "json":
        return True
    if number is not None:
        if column.min is not None and number < column.min:
            return False
        if column.max is not None and number > column.max:
            return False
    return True


def _json_path(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for key in path.removeprefix("$.").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@dataclass
class Row:
    """One data line of a file with what the validator made of it."""

    file: int
    line: str
    record: dict[str, Any] | None  # parsed values when the row is valid
    valid: bool


@dataclass
class Source:
    """All rows of one source, file by file."""

    name: str
    files: list[Path]
    rows: list[list[Row]] = field(default_factory=list)

    def valid(self) -> list[Row]:
        return [row for rows in self.rows for row in rows if row.valid]


def _read_csv(path: Path, contract: Contract, index: int) -> list[Row]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    assert header == [c.name for c in contract.input_columns]
    rows = []
    for line in lines[1:]:
        values = next(csv.reader([line]))
        ok = len(values) == len(header) and all(
            _value_ok(contract.column(name), value, json_source=False)
            for name, value in zip(header, values, strict=False)
        )
        rows.append(Row(index, line, dict(zip(header, values, strict=True)) if ok else None, ok))
    return rows


def _read_jsonl(path: Path, contract: Contract, index: int) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            rows.append(Row(index, line, None, False))
            continue
        ok = isinstance(record, dict) and all(
            _value_ok(
                column,
                _json_path(record, column.path) if column.path else record.get(column.name),
                json_source=True,
            )
            for column in contract.columns
        )
        rows.append(Row(index, line, record if ok else None, ok))
    return rows


def _load(out: Path, name: str) -> Source:
    contract = load_contract(name)
    ext = "jsonl" if contract.format == "jsonl" else "csv"
    files = sorted((out / name).glob(f"{name}_*.{ext}"))
    source = Source(name, files)
    reader = _read_jsonl if ext == "jsonl" else _read_csv
    source.rows = [reader(path, contract, i) for i, path in enumerate(files)]
    return source


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    return generate(tmp_path_factory.mktemp("demo") / "landing", SIZE, SEED, FILES)


@pytest.fixture(scope="module")
def sources(demo: GenerationReport) -> dict[str, Source]:
    return {name: _load(demo.out, name) for name in SOURCES}


def _all_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- tests


def test_scale() -> None:
    assert Scale.for_size(500) == Scale(events=500, users=50, products=20, orders=100)
    assert Scale.for_size(1_000_000) == Scale(1_000_000, 50_000, 5_000, 100_000)


def test_layout_and_formats(demo: GenerationReport) -> None:
    expected = {
        "_manifest.json",
        *(
            f"{s}/{s}_{i:04d}.{'jsonl' if s == 'user_events' else 'csv'}"
            for s in SOURCES
            for i in (1, 2)
        ),
    }
    assert set(_all_bytes(demo.out)) == expected
    assert {str(p.relative_to(demo.out)) for p in demo.paths} == expected
    for path in demo.paths:
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in data
        assert data.endswith(b"\n")
        data.decode("utf-8")
    header = (demo.out / "orders" / "orders_0001.csv").read_text().splitlines()[0]
    assert header == "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at"


def test_same_seed_gives_identical_bytes(demo: GenerationReport, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", SIZE, SEED, FILES)
    assert _all_bytes(again.out) == _all_bytes(demo.out)
    assert again.manifest == demo.manifest


def test_other_seed_gives_other_data(demo: GenerationReport, tmp_path: Path) -> None:
    other = _all_bytes(generate(tmp_path / "other", SIZE, SEED + 1, FILES).out)
    mine = _all_bytes(demo.out)
    for name in mine:
        if name != "_manifest.json":
            assert other[name] != mine[name], name


def test_every_defect_kind_is_injected(demo: GenerationReport) -> None:
    for source in SOURCES:
        defects = demo.defects(source)
        assert set(defects) == EXPECTED_KINDS[source] == set(SOURCE_DEFECTS[source])
        assert all(count >= 1 for count in defects.values()), (source, defects)


def test_manifest_is_sorted_and_consistent(demo: GenerationReport) -> None:
    text = (demo.out / "_manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert manifest == demo.manifest
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert manifest["parameters"] == {
        "base_date": "2026-01-01",
        "chunk_rows": gen_module.CHUNK_ROWS,
        "days": 31,
        "files": FILES,
        "seed": SEED,
        "size": SIZE,
    }
    for source in SOURCES:
        stats = manifest["sources"][source]
        files = stats["files"].values()
        for key in ("rows", "clean_rows", "invalid_rows"):
            assert stats[key] == sum(f[key] for f in files)
        for kind, count in stats["defects"].items():
            assert count == sum(f["defects"][kind] for f in files)
        for f in files:
            invalid = sum(n for kind, n in f["defects"].items() if kind in INVALID_KINDS)
            duplicates = f["defects"]["duplicate_in_file"] + f["defects"]["duplicate_across_files"]
            assert f["invalid_rows"] == invalid
            assert f["rows"] == f["clean_rows"] + duplicates + invalid
    assert manifest["sources"]["user_events"]["clean_rows"] == SIZE


def test_manifest_counts_match_the_files(
    demo: GenerationReport, sources: dict[str, Source]
) -> None:
    for name, source in sources.items():
        stats = demo.manifest["sources"][name]["files"]
        seen: set[str] = set()
        for path, rows in zip(source.files, source.rows, strict=True):
            entry = stats[f"{name}/{path.name}"]
            lines = [row.line for row in rows]
            assert len(lines) == entry["rows"], path
            assert sum(not row.valid for row in rows) == entry["invalid_rows"], path
            assert len(lines) - len(set(lines)) == entry["defects"]["duplicate_in_file"], path
            assert sum(line in seen for line in lines) == entry["defects"]["duplicate_across_files"]
            seen.update(lines)
        assert sum(len(rows) for rows in source.rows) == demo.rows(name)


def test_valid_rows_keep_referential_integrity(sources: dict[str, Source]) -> None:
    scale = Scale.for_size(SIZE)
    users = {int(row.record["user_id"]) for row in sources["users"].valid()}
    products = {int(row.record["product_id"]) for row in sources["products"].valid()}
    orders = {int(row.record["order_id"]) for row in sources["orders"].valid()}
    assert users == set(range(1, scale.users + 1))
    assert products == set(range(1, scale.products + 1))
    assert orders == set(range(1, scale.orders + 1))
    for row in sources["orders"].valid():
        assert int(row.record["user_id"]) in users
        assert int(row.record["product_id"]) in products
    events = sources["user_events"].valid()
    assert len({row.record["event_id"] for row in events}) == SIZE
    for row in events:
        assert row.record["user_id"] in users
        props = row.record["properties"]
        if row.record["event_type"] == "purchase":
            assert props["product_id"] in products
            assert re.search(r'"amount":\d+\.\d\d,', row.line)


def test_invalid_rows_never_win_a_merge(sources: dict[str, Source]) -> None:
    """Invalid versions of existing records are older than every valid version of them."""
    for name, key in (("users", "user_id"), ("products", "product_id"), ("orders", "order_id")):
        source = sources[name]
        header = [c.name for c in load_contract(name).input_columns]
        first_valid: dict[str, datetime] = {}
        for row in source.valid():
            stamp = datetime.strptime(row.record["updated_at"], CSV_TS)
            first_valid[row.record[key]] = min(stamp, first_valid.get(row.record[key], stamp))
        checked = 0
        for rows in source.rows:
            for row in rows:
                if row.valid:
                    continue
                values = dict(zip(header, next(csv.reader([row.line])), strict=True))
                stamp = _parse_time(values["updated_at"], CSV_TS)
                if values[key] in first_valid and stamp is not None:
                    assert stamp < first_valid[values[key]], row.line
                    checked += 1
        assert checked > 0, name


def test_later_files_carry_newer_versions(sources: dict[str, Source]) -> None:
    for name, key in (("users", "user_id"), ("products", "product_id"), ("orders", "order_id")):
        versions: dict[str, list[tuple[int, datetime, dict[str, Any]]]] = defaultdict(list)
        seen: set[str] = set()
        for row in sources[name].valid():
            if row.line not in seen:  # skip duplicates
                seen.add(row.line)
                stamp = datetime.strptime(row.record["updated_at"], CSV_TS)
                versions[row.record[key]].append((row.file, stamp, row.record))
        spread = 0
        for history in versions.values():
            history.sort(key=lambda v: (v[0], v[1]))
            stamps = [stamp for _, stamp, _ in history]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
            spread += history[0][0] != history[-1][0]
            if name == "orders":
                statuses = [record["status"] for _, _, record in history]
                assert statuses[0] == "pending"
                for before, after in itertools.pairwise(statuses):
                    assert after in NEXT_STATUS[before], statuses
                assert all(r["created_at"] == history[0][2]["updated_at"] for *_, r in history)
        assert spread > 0, f"no {name} record has versions in two files"


def test_late_events_are_in_the_last_file(
    demo: GenerationReport, sources: dict[str, Source]
) -> None:
    def slice_start(index: int) -> datetime:
        seconds = BASE_S + index * (END_S - BASE_S) // FILES
        return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)

    earlier_lines: set[str] = set()
    for index, rows in enumerate(sources["user_events"].rows):
        stamped = {  # copies of lines from earlier files are duplicates, not late events
            row.line: datetime.strptime(row.record["event_timestamp"], EVENT_TS)
            for row in rows
            if row.valid and row.line not in earlier_lines
        }
        earlier_lines.update(row.line for row in rows)
        start = slice_start(index)
        late = {line: stamp for line, stamp in stamped.items() if stamp < start}
        if index < FILES - 1:
            assert late == {}, f"late events in file {index + 1}"
            continue
        assert len(late) == demo.defects("user_events")["late_event"] >= 1
        earliest_regular = min(stamp for stamp in stamped.values() if stamp >= start)
        for stamp in late.values():
            assert earliest_regular - stamp >= timedelta(days=2)
            assert timedelta(days=2) <= start - stamp <= timedelta(days=10)


def test_clean_rows_follow_the_contract(sources: dict[str, Source]) -> None:
    """Spot checks on top of the validator: formats of timestamps, dates and money."""
    for row in sources["users"].valid():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row.record["signup_date"])
    for name in ("products", "orders"):
        for row in sources[name].valid():
            assert re.fullmatch(r"\d+\.\d\d", row.record["unit_price"])
            assert datetime.strptime(row.record["updated_at"], CSV_TS) < datetime(2026, 2, 1)
    for row in sources["user_events"].valid():
        assert list(row.record) == [
            "event_id",
            "user_id",
            "event_type",
            "event_timestamp",
            "properties",
        ]
        assert isinstance(row.record["properties"], dict)


def test_defect_rates_are_modest(tmp_path: Path) -> None:
    report = generate(tmp_path / "medium", 200_000, 11, 3)
    for source in SOURCES:
        stats = report.manifest["sources"][source]
        ratio = (stats["rows"] - stats["clean_rows"]) / stats["clean_rows"]
        assert 0.01 <= ratio <= 0.03, (source, ratio)
        assert all(n >= 1 for n in stats["defects"].values()), source


def test_many_chunks_keep_the_counts_right(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks exercise the chunk boundaries of duplicates, copies and late events."""
    monkeypatch.setattr(gen_module, "CHUNK_ROWS", 37)
    report = generate(tmp_path / "chunks", 2_000, 5, 3)
    for name in SOURCES:
        source = _load(report.out, name)
        stats = report.manifest["sources"][name]
        valid = source.valid()
        assert len(valid) == stats["rows"] - stats["invalid_rows"]
        lines = [row.line for rows in source.rows for row in rows]
        dups = stats["defects"]["duplicate_in_file"] + stats["defects"]["duplicate_across_files"]
        assert len(lines) - len(set(lines)) == dups
    events = _load(report.out, "user_events").valid()
    counts = Counter(row.record["event_type"] for row in events)
    assert set(counts) == {"page_view", "click", "purchase", "signup", "logout"}


def test_refuses_to_overwrite_unless_asked(demo: GenerationReport, tmp_path: Path) -> None:
    out = tmp_path / "twice"
    generate(out, 100, 1, 3)
    with pytest.raises(FileExistsError):
        generate(out, 100, 1, 2)
    generate(out, 100, 1, 2, overwrite=True)
    assert not (out / "users" / "users_0003.csv").exists()
    assert len(list((out / "user_events").iterdir())) == 2


@pytest.mark.parametrize(
    ("size", "seed", "files"), [(0, 1, 1), (10, -1, 1), (10, 1, 0), (10, 1, 11), (10, 1, 101)]
)
def test_rejects_bad_parameters(tmp_path: Path, size: int, seed: int, files: int) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, size, seed, files)


def test_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "assets_project.demo", "generate", "--size", "300"]
    command += ["--seed", "9", "--out", str(out), "--files", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "user_events" in result.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["parameters"]["files"] == 1
    assert manifest["sources"]["user_events"]["defects"]["duplicate_across_files"] == 0
    assert (out / "user_events" / "user_events_0001.jsonl").exists()
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 2
    assert "already holds" in again.stderr
