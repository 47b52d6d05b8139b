"""The generator tests' own small, strict validator of the demo files.

It reads the written files back and validates every row against the source contracts
(``assets_project/contracts/raw/*.odcs.yaml``), so the counts in ``_manifest.json`` are
checked against what really is in the files.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from assets_project.lib.contracts import Column, Contract, load_contract

SIZE, SEED, FILES = 500, 3, 2
CSV_TS = "%Y-%m-%d %H:%M:%S"
EVENT_TS = "%Y-%m-%dT%H:%M:%SZ"
# Every source gets these defects; some get more (a pattern to break, JSON to mangle, late events).
_EVERY_SOURCE_KINDS = {
    "duplicate_in_file",
    "duplicate_across_files",
    "null_required",
    "wrong_type",
    "out_of_range",
    "unknown_enum",
}
EXPECTED_KINDS = {
    "users": _EVERY_SOURCE_KINDS | {"bad_pattern"},
    "products": _EVERY_SOURCE_KINDS,
    "orders": _EVERY_SOURCE_KINDS,
    "user_events": _EVERY_SOURCE_KINDS
    | {"bad_pattern", "late_event", "malformed_json", "non_object_json"},
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


def parse_time(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return None


def value_ok(column: Column, value: Any, *, json_source: bool) -> bool:
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
        return isinstance(value, str) and parse_time(value, fmt) is not None
    elif kind == "date":
        return isinstance(value, str) and parse_time(value, "%Y-%m-%d") is not None
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
            value_ok(contract.column(name), value, json_source=False)
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
            value_ok(
                column,
                _json_path(record, column.path) if column.path else record.get(column.name),
                json_source=True,
            )
            for column in contract.columns
        )
        rows.append(Row(index, line, record if ok else None, ok))
    return rows


def load_source(out: Path, name: str) -> Source:
    contract = load_contract(name)
    ext = "jsonl" if contract.format == "jsonl" else "csv"
    files = sorted((out / name).glob(f"{name}_*.{ext}"))
    source = Source(name, files)
    reader = _read_jsonl if ext == "jsonl" else _read_csv
    source.rows = [reader(path, contract, i) for i, path in enumerate(files)]
    return source


def all_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
