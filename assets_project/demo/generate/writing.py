"""File writing: where the defects of a source go, and each file with its extras mixed in."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from assets_project.demo.generate import vocabulary
from assets_project.demo.generate.defects import (
    _event_defects,
    _order_defect,
    _product_defect,
    _user_defect,
)
from assets_project.demo.generate.records import (
    _event_lines,
    _order_lines,
    _product_lines,
    _user_lines,
)
from assets_project.demo.generate.vocabulary import (
    _EXTENSION,
    _HEADER,
    _STREAM,
    DEFECT_RATES,
    DUPLICATE_ACROSS_FILES,
    DUPLICATE_IN_FILE,
    INVALID_KINDS,
    LATE_EVENT,
    ORDERS,
    PRODUCTS,
    SOURCE_DEFECTS,
    USER_EVENTS,
    USERS,
)
from assets_project.demo.generate.world import _rng, _window, _World

log = logging.getLogger(__name__)


@dataclass
class _FilePlan:
    """What goes into one file besides its valid rows."""

    path: Path
    n_valid: int
    defects: dict[str, int]
    invalid: list[str]  # invalid lines (already generated)
    capture: np.ndarray  # positions of valid rows that later files copy
    across: list[str]  # lines copied from earlier files
    late_rows: np.ndarray  # positions of late events (user_events only)
    across_targets: list[int]  # for each captured row, the later file that repeats it

    def stats(self) -> dict[str, Any]:
        duplicates = self.defects[DUPLICATE_IN_FILE] + self.defects[DUPLICATE_ACROSS_FILES]
        invalid = sum(n for kind, n in self.defects.items() if kind in INVALID_KINDS)
        return {
            "clean_rows": self.n_valid,
            "defects": dict(sorted(self.defects.items())),
            "invalid_rows": invalid,
            "rows": self.n_valid + duplicates + invalid,
        }


def _distinct(rng: np.random.Generator, population: int, k: int) -> np.ndarray:
    """``k`` distinct draws from ``range(population)`` (with repeats only if impossible)."""
    return rng.choice(population, size=k, replace=k > population)


def _plan_source(
    source: str,
    w: _World,
    out: Path,
    rows_per_file: list[int],
    make_invalid: Callable[[np.random.Generator, str, int, np.ndarray], list[str]],
    n_entities: int,
) -> list[_FilePlan]:
    """Decide how many defects of each kind go into which file, and make the invalid lines.

    ``make_invalid(rng, kind, file, entities)`` returns one invalid line per entity index.
    """
    seed, files = w.seed, w.files
    rng = _rng(seed, _STREAM[source], 0)
    sizes = np.asarray(rows_per_file, dtype=np.float64)
    total = int(sizes.sum())
    ext = _EXTENSION[source]
    plans = [
        _FilePlan(
            path=out / source / f"{source}_{f + 1:04d}.{ext}",
            n_valid=rows_per_file[f],
            defects=dict.fromkeys(SOURCE_DEFECTS[source], 0),
            invalid=[],
            capture=np.empty(0, dtype=np.int64),
            across=[],
            late_rows=np.empty(0, dtype=np.int64),
            across_targets=[],
        )
        for f in range(files)
    ]
    for kind in SOURCE_DEFECTS[source]:
        weights = sizes.copy()
        base = total
        if kind == LATE_EVENT:
            weights[:-1] = 0
            base = rows_per_file[-1]
        elif kind == DUPLICATE_ACROSS_FILES:
            weights[: int(np.argmax(sizes > 0)) + 1] = 0  # needs an earlier file with rows
        if weights.sum() == 0:
            continue
        count = max(1, round(DEFECT_RATES[kind] * base))
        per_file = rng.multinomial(count, weights / weights.sum())
        entities = (
            _distinct(rng, n_entities, count) if n_entities else np.zeros(count, dtype=np.int64)
        )
        used = 0
        for f, n in enumerate(per_file):
            n = int(n)
            plans[f].defects[kind] = n
            if kind in INVALID_KINDS:
                frng = _rng(seed, _STREAM[source], 3, f, SOURCE_DEFECTS[source].index(kind))
                plans[f].invalid.extend(make_invalid(frng, kind, f, entities[used : used + n]))
            elif kind == LATE_EVENT and n:
                plans[f].late_rows = np.sort(_distinct(rng, rows_per_file[f], n))
            used += n

    # Duplicates across files: distinct source rows per earlier file, shared among later files.
    for g in range(1, files):
        n = plans[g].defects.get(DUPLICATE_ACROSS_FILES, 0)
        if n:
            earlier = sizes[:g]
            for f, k in enumerate(rng.multinomial(n, earlier / earlier.sum())):
                plans[f].across_targets.extend([g] * int(k))
    for plan in plans:
        if plan.across_targets:
            plan.capture = _distinct(rng, plan.n_valid, len(plan.across_targets))
    return plans


def _line_buffer(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The characters of a string array and the offsets of its values into them."""
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    data = lines.buffers()[2]
    return (memoryview(data) if data is not None else memoryview(b"")), offsets


def _write_file(
    plan: _FilePlan,
    header: str | None,
    build: Callable[[int, int, int], pa.Array],
    rng: np.random.Generator,
) -> list[str]:
    """Write one file: valid rows from ``build(chunk, lo, hi)`` with the planned extras mixed in.

    Invalid and copied lines go before a random valid row; a duplicate goes 1-49 rows after its
    original (within the same chunk). Returns the lines of the rows in ``plan.capture`` (in that
    order) for later files.
    """
    n = plan.n_valid
    extra = plan.invalid + plan.across
    slots = rng.integers(0, n + 1, len(extra))
    by_slot = np.argsort(slots, kind="stable")
    slots = slots[by_slot]
    dup_rows = np.sort(rng.integers(0, max(n, 1), plan.defects[DUPLICATE_IN_FILE]))
    dup_gap = rng.integers(1, 50, len(dup_rows))
    capture_order = np.argsort(plan.capture, kind="stable")
    capture_sorted = plan.capture[capture_order]
    captured: list[str] = [""] * len(plan.capture)

    plan.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.path.with_name(f".{plan.path.name}.tmp")
    with open(tmp, "wb", buffering=1 << 20) as handle:
        if header is not None:
            handle.write(header.encode("utf-8") + b"\n")
        for chunk, lo in enumerate(range(0, n, vocabulary.CHUNK_ROWS)):
            hi = min(n, lo + vocabulary.CHUNK_ROWS)
            data, offsets = _line_buffer(build(chunk, lo, hi))
            # (slot, tie-break, line): the line goes right before valid row `slot`.
            inserts: list[tuple[int, int, bytes]] = []
            d_lo, d_hi = np.searchsorted(dup_rows, [lo, hi])
            for row, gap in zip(
                dup_rows[d_lo:d_hi].tolist(), dup_gap[d_lo:d_hi].tolist(), strict=True
            ):
                line = bytes(data[offsets[row - lo] : offsets[row - lo + 1]])
                inserts.append((min(row + gap, hi), len(inserts), line))
            e_lo = int(np.searchsorted(slots, lo))
            e_hi = len(slots) if hi == n else int(np.searchsorted(slots, hi))
            for slot, i in zip(slots[e_lo:e_hi].tolist(), by_slot[e_lo:e_hi].tolist(), strict=True):
                inserts.append((slot, len(inserts), extra[i].encode("utf-8")))
            inserts.sort()
            written = lo
            for slot, _, line in inserts:
                if slot > written:
                    handle.write(data[offsets[written - lo] : offsets[slot - lo]])
                    written = slot
                handle.write(line)
            handle.write(data[offsets[written - lo] : offsets[hi - lo]])

            c_lo, c_hi = np.searchsorted(capture_sorted, [lo, hi])
            for i, row in zip(
                capture_order[c_lo:c_hi].tolist(), capture_sorted[c_lo:c_hi].tolist(), strict=True
            ):
                captured[i] = bytes(data[offsets[row - lo] : offsets[row - lo + 1]]).decode()
    os.replace(tmp, plan.path)
    return captured


def _write_source(
    source: str,
    w: _World,
    plans: list[_FilePlan],
    build: Callable[[int, int, int, int], pa.Array],
) -> dict[str, Any]:
    """Write all files of a source in order, passing copied lines on to later files."""
    stream = _STREAM[source]
    for f, plan in enumerate(plans):
        captured = _write_file(
            plan,
            _HEADER.get(source),
            functools.partial(build, f),
            _rng(w.seed, stream, 1, f),
        )
        for g, line in zip(plan.across_targets, captured, strict=True):
            plans[g].across.append(line)
        log.debug("wrote %s", plan.path)
    files = {f"{source}/{p.path.name}": p.stats() for p in plans}
    totals: dict[str, Any] = {
        key: sum(s[key] for s in files.values()) for key in ("clean_rows", "invalid_rows", "rows")
    }
    totals["defects"] = {
        kind: sum(s["defects"][kind] for s in files.values())
        for kind in sorted(SOURCE_DEFECTS[source])
    }
    totals["files"] = files
    return totals


def _csv_source(source: str, w: _World, out: Path) -> dict[str, Any]:
    table, lines, defect, n_entities = {
        USERS: (w.users, _user_lines, _user_defect, w.scale.users),
        PRODUCTS: (w.products, _product_lines, _product_defect, w.scale.products),
        ORDERS: (w.orders, _order_lines, _order_defect, w.scale.orders),
    }[source]
    plans = _plan_source(
        source,
        w,
        out,
        table.rows_per_file(),
        lambda rng, kind, f, entities: [defect(w, rng, kind, int(e)) for e in entities],
        n_entities,
    )

    def build(f: int, chunk: int, lo: int, hi: int) -> pa.Array:
        start = int(table.bounds[f])
        return lines(w, table.columns, start + lo, start + hi)

    return _write_source(source, w, plans, build)


def _events_source(w: _World, out: Path) -> dict[str, Any]:
    files, size = w.files, w.scale.events
    per_file = [size // files + (1 if f < size % files else 0) for f in range(files)]
    plans = _plan_source(
        USER_EVENTS,
        w,
        out,
        per_file,
        lambda rng, kind, f, entities: _event_defects(
            w, rng, kind, _window(f, files), len(entities)
        ),
        0,
    )

    def build(f: int, chunk: int, lo: int, hi: int) -> pa.Array:
        rng = _rng(w.seed, _STREAM[USER_EVENTS], 2, f, chunk)
        return _event_lines(w, rng, _window(f, files), per_file[f], lo, hi, plans[f].late_rows)

    return _write_source(USER_EVENTS, w, plans, build)
