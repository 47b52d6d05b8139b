"""Facts about other processes of this machine."""

from __future__ import annotations

import os


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
