"""dbt's target folders of earlier invocations, kept within bounds.

dagster-dbt gives every dbt command a target folder of its own, ``<op>-<run id[:7]>-<uuid[:7]>``
(``<uuid[:7]>`` without a run), under the project's target path, with a copy of the manifest,
the compiled SQL, the run results and the debug log: 3-4 MB each here, and nothing removes
them. A deployment that builds the marts on every drop fills its disk with them. The asset
that runs dbt removes the oldest before it starts another (``prune_invocation_folders``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

#: The invocation folders kept, newest first, whatever their age: enough to read the results,
#: compiled SQL and debug log of the last builds, failed or not.
INVOCATION_FOLDERS_KEPT = 20
#: A folder touched (or whose dbt.log was written) this recently is never removed: the dbt
#: command that owns it may still be running.
INVOCATION_FOLDER_MIN_AGE_SECONDS = 3600.0

_INVOCATION_FOLDER = re.compile(r"^(?:[A-Za-z0-9_]+-[0-9a-f]{7}-)?[0-9a-f]{7}$")


def target_root(project_dir: Path) -> Path:
    """Where dbt (and dagster-dbt) put target folders: ``DBT_TARGET_PATH``, else ``target``."""
    return project_dir / os.environ.get("DBT_TARGET_PATH", "target")


def _last_written(folder: Path) -> float:
    """The newest of the folder's own mtime and its dbt.log's (appended while dbt runs)."""
    times = [folder.stat().st_mtime]
    log = folder / "dbt.log"
    if log.exists():
        times.append(log.stat().st_mtime)
    return max(times)


def prune_invocation_folders(
    root: Path,
    *,
    keep: int = INVOCATION_FOLDERS_KEPT,
    min_age_seconds: float = INVOCATION_FOLDER_MIN_AGE_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """Remove the invocation folders under ``root`` beyond the ``keep`` newest that were last
    written ``min_age_seconds`` ago or more; return the removed folders.

    Only folders named as dagster-dbt names them are considered: the project's own
    ``manifest.json``, ``partial_parse.msgpack`` and any other file stay. A folder that
    vanishes meanwhile (another process pruning) is skipped.
    """
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    found: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        if not _INVOCATION_FOLDER.match(entry.name) or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            found.append((_last_written(entry), entry))
        except FileNotFoundError:
            continue
    found.sort(key=lambda item: item[0], reverse=True)
    removed = []
    for written, folder in found[keep:]:
        if now - written < min_age_seconds:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
