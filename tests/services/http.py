"""Helpers for the local servers tests start: a free loopback port, waiting for an answer."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes], log: Path, name: str, wait: float = 180
) -> None:
    """Return once ``url`` answers 200; fail with the end of ``log`` if ``process`` exits or
    nothing answers within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"{name} did not answer within {wait:.0f} s: {log.read_text()[-3000:]}")
