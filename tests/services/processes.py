"""Helpers for the process groups tests start (`make dev`, `dagster dev` and their children)."""

from __future__ import annotations

import os


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
