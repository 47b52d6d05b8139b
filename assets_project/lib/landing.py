"""The landing folders of file drops: which files are ready, and where they go afterwards.

A file is ready when it resolves to a path inside its source's landing folder (a symlink or
``..`` that leads elsewhere is never read), is not hidden or a temporary upload name, and is
complete by one of the producer conventions below:

- **settled**: it has not changed for ``settle_seconds`` (``LANDING_SETTLE_SECONDS``);
- **marker**: a ``<file>.done`` beside it, written after the file (its modification time is not
  older than the file's), makes it ready at once; the marker moves with the file to the archive
  or the quarantine;
- **temporary name, then rename**: names ending in one of :data:`TEMPORARY_SUFFIXES` and names
  starting with ``.`` or ``_`` are never read (nor reported), so an upload written as
  ``x.csv.part`` (or ``.x.csv``, ``x.csv._COPYING_``, ...) and renamed to ``x.csv`` when complete
  is read whole; a rename keeps the modification time, so a finished upload is ready at once.

An empty file is not ready until it has stayed empty for ``empty_grace_seconds``
(``LANDING_EMPTY_GRACE_SECONDS``, default 300) or has a marker: producers often create the file
first and write into it later, and a file moved to the quarantine at that moment would take the
content written afterwards with it. A folder-level ``_SUCCESS`` marker is not supported: a
landing folder is flat and shared by successive drops, so it cannot say which files it covers.

The settle time cannot see a writer that pauses longer than it; the ingestion compares the
file's size, modification time and SHA-256 before and after reading and commits nothing for a
file that changed (:class:`assets_project.lib.ingest.FileChangedError`), so such a file stays
in landing and is read again once it has settled. Producers that pause should use a marker or
a rename.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER_SUFFIX = ".done"
"""``<file>.done`` beside a file: the producer says the file is complete."""
TEMPORARY_SUFFIXES = (
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".filepart",
    ".inprogress",
    ".incomplete",
    ".uploading",
    "._copying_",  # hdfs dfs -put / hadoop fs -copyFromLocal
    "~",
)
"""Name endings (compared in lower case) of uploads still being written; never read."""
_NEVER_READ_SUFFIXES = (*TEMPORARY_SUFFIXES, MARKER_SUFFIX, ".reason")
DEFAULT_EMPTY_GRACE_SECONDS = 300.0


@dataclass(frozen=True)
class LandingPolicy:
    """How long an empty file may wait for content, and how often a failed file is retried.

    Set from the environment (:meth:`from_env`), the one place these are configured:

    - ``LANDING_EMPTY_GRACE_SECONDS`` (default 300): an empty file without a marker is read
      (and quarantined as empty) only after it has stayed empty this long;
    - ``LANDING_MAX_ATTEMPTS`` (default 3): runs requested for one file before the sensor
      moves it to the quarantine with the last run's error as its reason;
    - ``LANDING_RETRY_SECONDS`` (default 60): wait after the first failed run; it doubles after
      each further failure, up to ``LANDING_RETRY_MAX_SECONDS`` (default 3600).
    """

    empty_grace_seconds: float = DEFAULT_EMPTY_GRACE_SECONDS
    max_attempts: int = 3
    retry_seconds: float = 60.0
    retry_max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if min(self.empty_grace_seconds, self.retry_seconds, self.retry_max_seconds) < 0:
            raise ValueError("grace and retry seconds must not be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LandingPolicy:
        """The policy from ``LANDING_*`` variables; unset ones keep their defaults."""
        defaults = cls()
        return cls(
            empty_grace_seconds=float(
                environ.get("LANDING_EMPTY_GRACE_SECONDS", defaults.empty_grace_seconds)
            ),
            max_attempts=int(environ.get("LANDING_MAX_ATTEMPTS", defaults.max_attempts)),
            retry_seconds=float(environ.get("LANDING_RETRY_SECONDS", defaults.retry_seconds)),
            retry_max_seconds=float(
                environ.get("LANDING_RETRY_MAX_SECONDS", defaults.retry_max_seconds)
            ),
        )

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait before the next run after ``failed_attempts`` failed runs."""
        return min(self.retry_seconds * 2 ** max(failed_attempts - 1, 0), self.retry_max_seconds)


class UnsafePathError(ValueError):
    """A path that resolves outside the folder it must stay in."""


@dataclass(frozen=True)
class DropFile:
    """A file in a landing folder, with the identity used to ingest it once."""

    path: Path
    relative: str
    size: int
    mtime_ns: int
    marker: Path | None = None
    """The ``<file>.done`` marker that made the file ready, if any."""

    @property
    def run_key(self) -> str:
        """The file's identity: a changed file (new size or modification time) is a new file."""
        return f"{self.relative}:{self.size}:{self.mtime_ns}"


def resolve_inside(base: Path, candidate: Path | str) -> Path:
    """Resolve ``candidate`` (absolute or relative to ``base``) and require it inside ``base``."""
    base = base.resolve()
    resolved = (base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise UnsafePathError(f"{candidate} resolves to {resolved}, outside {base}")
    return resolved


def is_candidate_name(name: str) -> bool:
    """Whether a file (or object) named ``name`` may be a drop: not hidden (``.``/``_``), not a
    temporary upload name, a marker or a ``.reason`` file."""
    return not name.startswith((".", "_")) and not name.lower().endswith(_NEVER_READ_SUFFIXES)


def _is_candidate(path: Path) -> bool:
    return is_candidate_name(path.name)


def marker_of(path: Path) -> Path:
    """Where the ``.done`` marker of ``path`` would be."""
    return path.with_name(path.name + MARKER_SUFFIX)


def _completion_marker(base: Path, name: str, mtime_ns: int) -> Path | None:
    """The file's ``.done`` marker, if it is inside ``base`` and not older than the file."""
    marker = base / (name + MARKER_SUFFIX)
    try:
        resolve_inside(base, marker.name)
        stat = marker.stat()
    except (UnsafePathError, OSError):
        return None
    return marker if stat.st_mtime_ns >= mtime_ns else None


def scan(
    folder: Path,
    settle_seconds: float,
    now: float | None = None,
    *,
    empty_grace_seconds: float = DEFAULT_EMPTY_GRACE_SECONDS,
) -> tuple[list[DropFile], list[str]]:
    """Ready files in ``folder`` (sorted by name), and a note for each file passed over.

    Notes say why a visible file is not ready (still being written, empty and waiting for
    content, unsafe path) so that a sensor can report them instead of silently ignoring them.
    Temporary upload names, markers and hidden names are passed over without a note.
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
        marker = _completion_marker(base, entry.name, stat.st_mtime_ns)
        age = now - stat.st_mtime
        if marker is None and age < settle_seconds:
            notes.append(f"{entry.name}: modified {age:.1f}s ago, still settling")
            continue
        if marker is None and stat.st_size == 0 and age < empty_grace_seconds:
            notes.append(
                f"{entry.name}: empty for {age:.0f}s, waiting up to {empty_grace_seconds:.0f}s "
                f"for content (or a {MARKER_SUFFIX} marker)"
            )
            continue
        ready.append(
            DropFile(
                path=base / entry.name,
                relative=f"{folder.name}/{entry.name}",
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                marker=marker,
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


def _move_with_marker(path: Path, target: Path) -> Path:
    """Move ``path`` to ``target``, and its ``.done`` marker (if any) beside it."""
    shutil.move(path, target)
    marker = marker_of(path)
    if marker.is_file() and not marker.is_symlink():
        shutil.move(marker, marker_of(target))
    return target


def archive(path: Path, archive_dir: Path) -> Path:
    """Move an ingested file (and its marker) into ``archive_dir``; never overwrites."""
    return _move_with_marker(path, _free_name(archive_dir, path.name))


def quarantine(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Move a file (and its marker) into ``quarantine_dir`` with a ``.reason`` file beside it."""
    target = _free_name(quarantine_dir, path.name)
    target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
    return _move_with_marker(path, target)
