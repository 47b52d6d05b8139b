"""The entry point: ``generate`` checks its parameters, writes every source and the manifest."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assets_project.demo.generate import vocabulary
from assets_project.demo.generate.variants import Variants, apply_variants
from assets_project.demo.generate.vocabulary import (
    _EXTENSION,
    BASE_DATE,
    CSV_TIMESTAMP_FORMAT,
    DATE_FORMAT,
    DAYS,
    EVENT_TIMESTAMP_FORMAT,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    MAX_FILES,
    ORDERS,
    PRODUCTS,
    SOURCES,
    USER_EVENTS,
    USERS,
    Scale,
)
from assets_project.demo.generate.world import _build_world
from assets_project.demo.generate.writing import _csv_source, _events_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationReport:
    """What ``generate`` wrote: the manifest (also in ``out/_manifest.json``) and the paths."""

    out: Path
    manifest: dict[str, Any]
    paths: tuple[Path, ...]
    seconds: float

    def rows(self, source: str) -> int:
        """Data lines written for ``source`` (headers excluded)."""
        return int(self.manifest["sources"][source]["rows"])

    def defects(self, source: str) -> dict[str, int]:
        """Rows injected per defect kind for ``source``."""
        return dict(self.manifest["sources"][source]["defects"])

    @property
    def events_per_second(self) -> float:
        """Valid user events generated per second of wall time (all sources included)."""
        return self.manifest["parameters"]["size"] / max(self.seconds, 1e-9)


def output_paths(out: Path, files: int) -> list[Path]:
    """The files ``generate`` writes into ``out`` (sources in order, then the manifest)."""
    paths = [
        out / source / f"{source}_{f + 1:04d}.{_EXTENSION[source]}"
        for source in SOURCES
        for f in range(files)
    ]
    return [*paths, out / MANIFEST_NAME]


def _existing_outputs(out: Path) -> list[Path]:
    found = [
        path
        for source in SOURCES
        for path in sorted((out / source).glob(f"{source}_*.{_EXTENSION[source]}"))
    ]
    if (out / MANIFEST_NAME).exists():
        found.append(out / MANIFEST_NAME)
    return found


def generate(
    out: Path,
    size: int,
    seed: int,
    files: int = 2,
    *,
    overwrite: bool = False,
    variants: Variants | None = None,
) -> GenerationReport:
    """Write demo drops for all sources into ``out`` and return what was written.

    ``size`` is the number of (distinct, valid) user events; users, products and orders scale with
    it (see ``Scale``). Each source gets ``files`` files. Refuses to write into a folder that
    already holds generated drops unless ``overwrite`` is set, which first deletes them (a stale
    ``users_0003.csv`` from a run with more files would otherwise stay behind). ``variants``
    makes late, shrunken or null-spiked batches of the drops (see ``variants``).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, not {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if isinstance(files, bool) or not isinstance(files, int) or not 1 <= files <= MAX_FILES:
        raise ValueError(f"files must be an integer from 1 to {MAX_FILES}, not {files!r}")
    if files > size:
        raise ValueError(f"files ({files}) must not exceed size ({size})")
    out = Path(out)
    existing = _existing_outputs(out)
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds generated files ({existing[0]}, ...); "
                "use another folder or overwrite=True (--overwrite)"
            )
        for path in existing:
            path.unlink()

    started = time.perf_counter()
    scale = Scale.for_size(size)
    world = _build_world(seed, files, scale)
    sources = {
        USERS: _csv_source(USERS, world, out),
        PRODUCTS: _csv_source(PRODUCTS, world, out),
        ORDERS: _csv_source(ORDERS, world, out),
        USER_EVENTS: _events_source(world, out),
    }
    manifest: dict[str, Any] = {
        "generator": "assets_project.demo",
        "generator_version": GENERATOR_VERSION,
        "parameters": {
            "base_date": BASE_DATE,
            "chunk_rows": vocabulary.CHUNK_ROWS,
            "days": DAYS,
            "files": files,
            "seed": seed,
            "size": size,
        },
        "entities": {
            ORDERS: scale.orders,
            PRODUCTS: scale.products,
            USER_EVENTS: scale.events,
            USERS: scale.users,
        },
        "formats": {
            ORDERS: {"created_at": CSV_TIMESTAMP_FORMAT, "updated_at": CSV_TIMESTAMP_FORMAT},
            PRODUCTS: {"updated_at": CSV_TIMESTAMP_FORMAT},
            USER_EVENTS: {"event_timestamp": EVENT_TIMESTAMP_FORMAT},
            USERS: {"signup_date": DATE_FORMAT, "updated_at": CSV_TIMESTAMP_FORMAT},
        },
        "sources": sources,
    }
    if variants is not None and variants.active:
        written = {source: sorted(stats["files"]) for source, stats in sources.items()}
        manifest["variants"] = apply_variants(out, written, variants)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    tmp = out / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, out / MANIFEST_NAME)
    seconds = time.perf_counter() - started
    log.info("generated %s events into %s in %.1f s", size, out, seconds)
    return GenerationReport(
        out=out, manifest=manifest, paths=tuple(output_paths(out, files)), seconds=seconds
    )
