from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from assets_project.lib.landing import UnsafePathError, archive, quarantine, resolve_inside, scan


def test_scan_skips_unsettled_hidden_and_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    folder.mkdir()
    old = time.time() - 60
    for name in ("a.csv", ".hidden.csv", "b.csv.part", "_manifest.json"):
        (folder / name).write_text("x")
        os.utime(folder / name, (old, old))
    (folder / "fresh.csv").write_text("still being written")
    ready, notes = scan(folder, settle_seconds=5)
    assert [d.relative for d in ready] == ["users/a.csv"]
    assert any("fresh.csv" in n and "settling" in n for n in notes)


def test_symlink_leading_outside_is_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    folder.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("x")
    (folder / "link.csv").symlink_to(secret)
    ready, notes = scan(folder, settle_seconds=0)
    assert ready == []
    assert any("outside" in n for n in notes)
    with pytest.raises(UnsafePathError):
        resolve_inside(folder, "../secret.csv")


def test_run_key_changes_with_content_identity(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    folder.mkdir()
    path = folder / "a.csv"
    path.write_text("one")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (first,) = scan(folder, 0)[0]
    assert scan(folder, 0)[0][0].run_key == first.run_key
    path.write_text("two, longer")
    os.utime(path, (1_700_000_100, 1_700_000_100))
    assert scan(folder, 0)[0][0].run_key != first.run_key


def test_archive_and_quarantine_never_overwrite(tmp_path: Path) -> None:
    for _ in range(2):
        (tmp_path / "a.csv").write_text("x")
        archive(tmp_path / "a.csv", tmp_path / "archive")
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["a.1.csv", "a.csv"]
    (tmp_path / "b.csv").write_text("x")
    target = quarantine(tmp_path / "b.csv", tmp_path / "q", "file is empty")
    assert target.read_text() == "x"
    assert (tmp_path / "q" / "b.csv.reason").read_text() == "file is empty\n"
