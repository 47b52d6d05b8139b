"""Tests of the demo data generator. File writing: chunk boundaries of duplicates, copies and late events."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from assets_project.demo.generate import SOURCES, generate, vocabulary
from assets_project.lib.contracts import load_contract
from tests.demo.generate.strict import load_source


def test_many_chunks_keep_the_counts_right(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks exercise the chunk boundaries of duplicates, copies and late events."""
    monkeypatch.setattr(vocabulary, "CHUNK_ROWS", 37)
    report = generate(tmp_path / "chunks", 2_000, 5, 3)
    for name in SOURCES:
        source = load_source(report.out, name)
        stats = report.manifest["sources"][name]
        valid = source.valid()
        assert len(valid) == stats["rows"] - stats["invalid_rows"]
        lines = [row.line for rows in source.rows for row in rows]
        dups = stats["defects"]["duplicate_in_file"] + stats["defects"]["duplicate_across_files"]
        assert len(lines) - len(set(lines)) == dups
    events = load_source(report.out, "user_events").valid()
    counts = Counter(row.record["event_type"] for row in events)
    assert set(counts) == set(load_contract("user_events").enum("event_type"))
