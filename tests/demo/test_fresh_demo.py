"""A fresh demo is green: every demo file passes the per-batch checks of its contract.

``make dev`` generates the demo drops (``python -m assets_project.demo generate`` with the
Makefile's ``DEMO_SIZE`` and ``DEMO_SEED``), and the file sensor ingests each file as one batch. This test does the
same with the real ingestion (``lib/ingest.ingest_file``) into a temporary lake and computes
what the checks on ``raw/<source>`` compute for each batch: the reject rate (dead-letter rows /
all rows of the batch, from the Delta tables), the batch volume, the row conservation and the
event-time freshness of each table. Every file must stay within its contract's warn threshold
and volume bounds, and every table within its freshness window, so the first screen a
user sees has no failed check; the injected defects are still all there, in the dead-letter
tables.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assets_project.demo.__main__ import main
from assets_project.demo.generate import MANIFEST_NAME, SOURCES
from assets_project.lib.contracts import load_contract
from assets_project.lib.freshness import event_time_verdict
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout
from assets_project.lib.quality import (
    batch_counts,
    conflicting_versions,
    newest_event_time,
    shared_unique_values,
)

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def _make_default(name: str) -> int:
    """The default of a ``NAME ?= value`` variable of the Makefile."""
    match = re.search(rf"^{name} \?= (\d+)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert match is not None, f"{name} has no default in the Makefile"
    return int(match.group(1))


def test_default_demo_passes_every_batch_check(layout: LakeLayout) -> None:
    size, seed = _make_default("DEMO_SIZE"), _make_default("DEMO_SEED")
    ends_at = re.search(r"^DEMO_ENDS_AT \?= (.+)$", MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert ends_at is not None, "DEMO_ENDS_AT has no default in the Makefile"
    command = ["generate", "--size", str(size), "--seed", str(seed), *ends_at.group(1).split()]
    assert main([*command, "--out", str(layout.landing_dir)]) == 0  # as `make demo-data`
    manifest = json.loads((layout.landing_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    problems: list[str] = []
    for source in SOURCES:
        contract = load_contract(source)
        rate, volume = contract.reject_rate, contract.expected_volume
        stats = manifest["sources"][source]
        assert stats["invalid_rows"] > 0, f"the demo injects invalid rows into {source}"
        for name, expected in stats["files"].items():
            batch_id = name.replace("/", "-")
            result = ingest_file(
                layout.landing_dir / name, contract, layout, source=name, batch_id=batch_id
            )
            counts = batch_counts(layout, source, batch_id)
            # The validator rejects exactly the rows the generator made invalid.
            assert result.rows_in == expected["rows"], name
            assert counts.dead_letter == expected["invalid_rows"], name
            assert result.rows_in == counts.total, f"{name}: rows not conserved"
            if counts.reject_rate > rate.warn_above:
                problems.append(
                    f"{name}: reject rate {counts.reject_rate:.1%} "
                    f"({counts.dead_letter} of {counts.total}) above {rate.warn_above:.0%}"
                )
            if result.rows_in < volume.min_rows or (
                volume.max_rows is not None and result.rows_in > volume.max_rows
            ):
                problems.append(
                    f"{name}: {result.rows_in} records outside {volume.min_rows}.."
                    f"{volume.max_rows or 'any'}"
                )
        # Generated as `make dev` does, the data ends now: its event-time freshness passes.
        freshness = contract.freshness
        verdict = event_time_verdict(
            newest_event_time(layout, contract),
            datetime.now(UTC),
            timedelta(minutes=freshness.warn_after_minutes),
            timedelta(minutes=freshness.fail_after_minutes),
        )
        if not verdict.passed:
            problems.append(f"{source}: event-time freshness: {verdict.reason}")
        conflicts = conflicting_versions(layout, contract)
        if conflicts.count:
            problems.append(f"{source}: {conflicts.count} keys with conflicting versions")
        for column in contract.columns:
            if column.unique:
                shared = shared_unique_values(layout, contract, column.name)
                if shared.count:
                    problems.append(f"{source}.{column.name}: {shared.count} shared values")
    assert problems == []
