"""Bad batches on purpose: late, shrunken and null-spiked drops for the monitoring checks.

Applied to the files ``generate`` wrote, after they were written; without variants nothing here
runs, so the default output stays byte-identical for a seed. Each variant is deterministic:

``ends_at``
    Every timestamp and date of every file is shifted by one offset so that the month of data
    ends at ``ends_at`` instead of 2026-02-01 (dates move by the offset's whole days). Ending
    now gives fresh data; ending hours ago gives a *late batch*, whose newest event is older
    than the contract allows. Values that are no valid date (the ``wrong_type`` defects) stay.
``shrink``
    The last file of each source keeps only this share of its data lines (at least one): a
    *shrunken batch*.
``null_spike``
    In the last file of each source, this share of the data lines loses a value: the first
    column after the key of a CSV source (``email``, ``name``, ``user_id``, all required, so
    those lines are rejected), ``properties`` of an event (nullable, so it lands as null with
    its ``amount``): a *null-spiked batch*.

The manifest's per-file counts describe the files as generated; its ``variants`` entry says
what was changed afterwards.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assets_project.demo.generate.vocabulary import END_S, USER_EVENTS

_TEMPORAL = re.compile(
    r"(?<![\w.:-])(\d{4}-\d{2}-\d{2})(?:([ T])(\d{2}:\d{2}:\d{2})(Z?))?(?![\w.:-])"
)
_PROPERTIES = re.compile(r',"properties":\{.*\}\}$')


@dataclass(frozen=True)
class Variants:
    """Which bad batches to make (see the module docstring); all off by default."""

    ends_at: datetime | None = None
    shrink: float | None = None
    null_spike: float | None = None

    def __post_init__(self) -> None:
        for name in ("shrink", "null_spike"):
            share = getattr(self, name)
            if share is not None and not 0 < share <= 1:
                raise ValueError(f"{name} must be a share in (0, 1], not {share!r}")
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise ValueError("ends_at must carry a time zone (e.g. 2026-12-03T09:00:00+00:00)")

    @property
    def active(self) -> bool:
        return self.ends_at is not None or self.shrink is not None or self.null_spike is not None

    def describe(self) -> dict[str, Any]:
        """The variants as the manifest records them."""
        return {
            "ends_at": self.ends_at.astimezone(UTC).replace(microsecond=0).isoformat()
            if self.ends_at
            else None,
            "null_spike": self.null_spike,
            "shrink": self.shrink,
        }


def _shift_line(line: str, offset: timedelta) -> str:
    def shifted(match: re.Match[str]) -> str:
        day, separator, clock, zone = match.groups()
        try:
            if clock is None:
                value = datetime.strptime(day, "%Y-%m-%d")
                return (value + timedelta(days=offset.days)).strftime("%Y-%m-%d")
            value = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return match.group(0)
        moved = value + offset
        return f"{moved:%Y-%m-%d}{separator}{moved:%H:%M:%S}{zone}"

    return _TEMPORAL.sub(shifted, line)


def _blank_first_field(line: str) -> str:
    fields = next(csv.reader([line]))
    if len(fields) < 2:
        return line
    fields[1] = ""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _null_properties(line: str) -> str:
    return _PROPERTIES.sub(',"properties":null}', line)


def _every(share: float, index: int) -> bool:
    """Whether data line ``index`` is one of an evenly spread ``share`` of the lines."""
    return math.floor((index + 1) * share) > math.floor(index * share)


def _rewrite(path: Path, change: Callable[[list[str]], list[str]]) -> int:
    """Rewrite the data lines of ``path`` (the header stays) through ``change``; returns the
    data lines written."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[:1] if path.suffix == ".csv" else []
    kept = change(lines[len(header) :])
    path.write_text("".join(f"{line}\n" for line in [*header, *kept]), encoding="utf-8")
    return len(kept)


def _shifted(offset: timedelta) -> Callable[[list[str]], list[str]]:
    return lambda data: [_shift_line(line, offset) for line in data]


def _spiked(share: float, blank: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    return lambda data: [blank(x) if _every(share, i) else x for i, x in enumerate(data)]


def _shrunk(share: float) -> Callable[[list[str]], list[str]]:
    return lambda data: data[: max(1, math.ceil(len(data) * share))]


def apply_variants(out: Path, files: dict[str, list[str]], variants: Variants) -> dict[str, Any]:
    """Change the generated ``files`` (per source, relative to ``out``, in order) as
    ``variants`` asks; returns the manifest's ``variants`` entry."""
    kept: dict[str, int] = {}
    if variants.ends_at is not None:
        ends_at = variants.ends_at.astimezone(UTC).replace(microsecond=0)
        offset = ends_at - datetime.fromtimestamp(END_S, tz=UTC)
        for relative in (r for paths in files.values() for r in paths):
            _rewrite(out / relative, _shifted(offset))
    for source, paths in files.items():
        last = out / paths[-1]
        if variants.null_spike is not None:
            blank = _null_properties if source == USER_EVENTS else _blank_first_field
            _rewrite(last, _spiked(variants.null_spike, blank))
        if variants.shrink is not None:
            kept[paths[-1]] = _rewrite(last, _shrunk(variants.shrink))
    return {**variants.describe(), "rows_after_shrink": kept}
