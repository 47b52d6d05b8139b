"""Run one benchmark step in a fresh process and measure it from the outside.

A worker is ``python -m <module> <args>``: it does its untimed setup (imports, loading
definitions), times its work itself and prints one JSON object on its last stdout line, with at
least ``seconds``. The parent samples the resident memory of the worker *and every process it
starts* (dbt runs as a child of the Dagster run) every 50 ms from ``/proc``, and takes the
worker's CPU time, children included, from ``wait4``. (Not its ``ru_maxrss``: a child forked
from this process starts with this process's peak, so a small worker would report ours.)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_SAMPLE_S = 0.05


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident KiB) for every process visible in /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            statm = Path(entry.path, "statm").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name (2nd field) may hold spaces and parentheses: split after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (ppid, int(statm.split()[1]) * _PAGE_KIB)
    return table


def tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, in KiB."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


@dataclass
class WorkerRun:
    """What one worker run reported and what was measured around it."""

    seconds: float  # the work, as timed by the worker
    cpu_s: float  # user + system CPU of the worker and its children, setup included
    peak_mib: float  # largest sampled RSS sum over the worker's process tree
    report: dict[str, Any] = field(default_factory=dict)


def run_worker(module: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> WorkerRun:
    """Run ``python -m module args`` to completion; raise with its stderr tail when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
        peak_kib = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, tree_rss_kib(process.pid))
            time.sleep(_SAMPLE_S)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if process.returncode != 0 or not stdout.strip():
        raise RuntimeError(
            f"{module} {' '.join(args)} exited with {process.returncode}:\n{stderr[-3000:]}"
        )
    report = json.loads(stdout.strip().splitlines()[-1])
    return WorkerRun(
        seconds=float(report.pop("seconds")),
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_mib=peak_kib / 1024,
        report=report,
    )


class _Timed(Protocol):
    @property
    def seconds(self) -> Sequence[float]: ...


class RunTimes:
    """The fastest and the median of a measurement's run times (its ``seconds``, one a run)."""

    @property
    def min_s(self: _Timed) -> float:
        return min(self.seconds)

    @property
    def median_s(self: _Timed) -> float:
        return statistics.median(self.seconds)


def emit(report: Mapping[str, Any]) -> None:
    """A worker's last stdout line: its JSON report."""
    sys.stdout.write(json.dumps(dict(report)) + "\n")
    sys.stdout.flush()
