"""Value formatting: vectorised with Arrow for valid rows, scalar for single invalid rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assets_project.demo.generate.vocabulary import _DAY, CSV_TIMESTAMP_FORMAT, DATE_FORMAT


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _take(values: Sequence[str], codes: np.ndarray) -> pa.Array:
    return _strings(values).take(pa.array(codes))


def _int_str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays and Python strings."""
    return pc.binary_join_element_wise(*parts, "")


def _money(cents: np.ndarray) -> pa.Array:
    """Non-negative cents as ``"12.50"``."""
    frac = pc.utf8_lpad(_int_str(cents % 100), width=2, padding="0")
    return _join(_int_str(cents // 100), ".", frac)


def _fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray:
    """The characters of a string array whose values all have ``width`` bytes, as (n, width)."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    if n == 0:
        return np.empty((0, width), dtype=np.uint8)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if data.size != n * width:
        raise ValueError("values are not all of the same width")
    return data.reshape(n, width)


def _from_fixed_width(chars: np.ndarray) -> pa.Array:
    """A string array from an (n, width) array of ASCII bytes."""
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _csv_ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as ``2026-01-05 10:11:12``."""
    return pc.cast(pa.array(seconds.astype("datetime64[s]")), pa.string())


def _iso_ts(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as ``2026-01-05T10:11:12Z``."""
    chars = np.empty((len(seconds), 20), dtype=np.uint8)
    chars[:, :19] = _fixed_width_bytes(_csv_ts(seconds), 19)
    chars[:, 10] = ord("T")
    chars[:, 19] = ord("Z")
    return _from_fixed_width(chars)


def _date_str(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 as ``2026-01-05``."""
    return pc.cast(pa.array(days.astype("datetime64[D]")), pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuid_chars(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as an (n, 36) array of lower-case hex characters."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 0x0F]
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)  # 8-4-4-4-12 hex digits
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        chars[:, dst : dst + width] = hexed[:, src : src + width]
    return chars


def _fmt_ts(seconds: int, fmt: str = CSV_TIMESTAMP_FORMAT) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime(fmt)


def _fmt_date(day: int) -> str:
    return _fmt_ts(int(day) * _DAY, DATE_FORMAT)


def _fmt_money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _csv_line(fields: Sequence[str]) -> str:
    """One CSV line (with ``\\n``), quoting only fields that need it."""
    out = []
    for value in fields:
        if any(c in value for c in ',"\n\r'):
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out) + "\n"
