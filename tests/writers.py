"""Producers that misbehave, for the landing tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import assets_project.lib.ingest as ingest_module
from assets_project.lib.readers import FileBatches


def append_after_the_last_batch(monkeypatch: pytest.MonkeyPatch, path: Path, rest: str) -> None:
    """A writer that resumes ``path`` once the reader has read every batch, before the commits."""
    real_open_file = ingest_module.open_file

    def writer_resumes(opened_path: Path) -> FileBatches:
        opened = real_open_file(opened_path)
        batches = opened.batches

        def then_append() -> Iterator:
            yield from batches
            with path.open("a", encoding="utf-8") as writer:
                writer.write(rest)

        opened.batches = then_append()
        return opened

    monkeypatch.setattr(ingest_module, "open_file", writer_resumes)
