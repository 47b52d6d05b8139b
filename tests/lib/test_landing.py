from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from assets_project.lib.landing import (
    LandingPolicy,
    UnsafePathError,
    archive,
    quarantine,
    resolve_inside,
    scan,
)


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


def test_markers_temporary_names_and_empty_files(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    folder.mkdir()
    now = 1_800_000_000.0
    for name, age, text in [
        ("marked.csv", 1, "x"),  # written a second ago, but marked complete
        ("marked.csv.done", 0, ""),
        ("stale_marker.csv", 1, "x"),  # written again after its marker
        ("stale_marker.csv.done", 2, ""),
        ("empty.csv", 60, ""),  # settled, but empty: may still get content
        ("empty_marked.csv", 60, ""),  # empty on purpose: the producer says it is complete
        ("empty_marked.csv.done", 60, ""),
        ("long_empty.csv", 301, ""),
        ("orphan.csv.done", 60, ""),
        ("upload.csv._COPYING_", 60, "x"),
        ("upload.csv.inprogress", 60, "x"),
        ("upload.csv~", 60, "x"),
    ]:
        (folder / name).write_text(text)
        os.utime(folder / name, (now - age, now - age))
    ready, notes = scan(folder, settle_seconds=5, now=now, empty_grace_seconds=300)
    assert [(d.path.name, d.marker is not None) for d in ready] == [
        ("empty_marked.csv", True),
        ("long_empty.csv", False),
        ("marked.csv", True),
    ]
    assert notes == [
        "empty.csv: empty for 60s, waiting up to 300s for content (or a .done marker)",
        "stale_marker.csv: modified 1.0s ago, still settling",
    ]


def test_marker_moves_with_its_file(tmp_path: Path) -> None:
    for name in ("a.csv", "a.csv.done", "b.csv", "b.csv.done"):
        (tmp_path / name).write_text("x")
    archived = archive(tmp_path / "a.csv", tmp_path / "archive")
    assert (archived.parent / "a.csv.done").exists()
    quarantined = quarantine(tmp_path / "b.csv", tmp_path / "q", "why")
    assert sorted(p.name for p in quarantined.parent.iterdir()) == [
        "b.csv",
        "b.csv.done",
        "b.csv.reason",
    ]
    assert not any(tmp_path.glob("*.csv*"))


def test_landing_policy_from_environment_and_backoff() -> None:
    assert LandingPolicy.from_env({}) == LandingPolicy(
        empty_grace_seconds=300, max_attempts=3, retry_seconds=60, retry_max_seconds=3600
    )
    policy = LandingPolicy.from_env(
        {
            "LANDING_EMPTY_GRACE_SECONDS": "30",
            "LANDING_MAX_ATTEMPTS": "5",
            "LANDING_RETRY_SECONDS": "10",
            "LANDING_RETRY_MAX_SECONDS": "50",
        }
    )
    assert (policy.empty_grace_seconds, policy.max_attempts) == (30, 5)
    assert [policy.backoff(n) for n in range(1, 6)] == [10, 20, 40, 50, 50]
    with pytest.raises(ValueError, match="max_attempts"):
        LandingPolicy(max_attempts=0)
