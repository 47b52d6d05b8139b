"""The landing folders of file drops: which files are ready, and where they go afterwards.

A file is ready when it has not changed for ``settle_seconds`` (so a file still being written
is not read half-way), is not hidden or a temporary upload name, and resolves to a path inside
its source's landing folder (a symlink or ``..`` that leads elsewhere is never read).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".reason")


class UnsafePathError(ValueError):
    """A path that resolves outside the folder it must stay in."""


@dataclass(frozen=True)
class DropFile:
    """A file in a landing folder, with the identity used to ingest it once."""

    path: Path
    relative: str
    size: int
    mtime_ns: int

    @property
    def run_key(self) -> str:
        return f"{self.relative}:{self.size}:{self.mtime_ns}"


def resolve_inside(base: Path, candidate: Path | str) -> Path:
    """Resolve ``candidate`` (absolute or relative to ``base``) and require it inside ``base``."""
    base = base.resolve()
    resolved = (base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise UnsafePathError(f"{candidate} resolves to {resolved}, outside {base}")
    return resolved


def _is_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith((".", "_")) and not name.lower().endswith(TEMPORARY_SUFFIXES)


def scan(
    folder: Path, settle_seconds: float, now: float | None = None
) -> tuple[list[DropFile], list[str]]:
    """Ready files in ``folder`` (sorted by name), and a note for each file passed over.

    Notes say why a visible file is not ready (still being written, unsafe path) so that a
    sensor can report them instead of silently ignoring them.
    """
    now = time.time() if now is None else now
    ready: list[DropFile] = []
    notes: list[str] = []
    if not folder.is_dir():
        return ready, notes
    base = folder.resolve()
    for entry in sorted(folder.iterdir()):
        if not _is_candidate(entry):
            continue
        try:
            resolved = resolve_inside(base, entry.name)
        except UnsafePathError as exc:
            notes.append(f"not read: {exc}")
            continue
        if not resolved.is_file():
            continue
        stat = resolved.stat()
        if now - stat.st_mtime < settle_seconds:
            notes.append(f"{entry.name}: modified {now - stat.st_mtime:.1f}s ago, still settling")
            continue
        ready.append(
            DropFile(
                path=base / entry.name,
                relative=f"{folder.name}/{entry.name}",
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            )
        )
    return ready, notes


def _free_name(target_dir: Path, name: str) -> Path:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    counter = 1
    while target.exists():
        stem, dot, suffix = name.partition(".")
        target = target_dir / f"{stem}.{counter}{dot}{suffix}"
        counter += 1
    return target


def archive(path: Path, archive_dir: Path) -> Path:
    """Move an ingested file into ``archive_dir``; never overwrites an earlier file."""
    target = _free_name(archive_dir, path.name)
    shutil.move(path, target)
    return target


def quarantine(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Move an unreadable file into ``quarantine_dir`` with a ``.reason`` file beside it."""
    target = _free_name(quarantine_dir, path.name)
    target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
    shutil.move(path, target)
    return target
