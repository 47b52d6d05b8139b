"""The failpoint module: names are checked, hooks see the points of the code they wrap once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from assets_project.lib.failpoints import FAILPOINT_ENV, FAILPOINTS, failpoint, failpoint_hook


def test_an_unknown_failpoint_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown failpoint 'replay\.chekced'"):
        failpoint("replay.chekced")


def test_a_hook_sees_each_point_and_not_the_points_its_own_code_reaches() -> None:
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        failpoint("replay.raw_committed")  # the hook's own load: no second call

    with failpoint_hook(hook):
        failpoint("replay.checked")
        failpoint("postgres.snapshot")
    failpoint("replay.checked")  # the hook is gone
    assert seen == ["replay.checked", "postgres.snapshot"]


def test_the_named_failpoint_kills_the_process_and_the_others_do_not() -> None:
    code = (
        "from assets_project.lib.failpoints import failpoint\n"
        "failpoint('kafka.after_consume')\n"
        "print('passed', flush=True)\n"
        "failpoint('kafka.after_dlq_commit')\n"
        "print('not reached', flush=True)\n"
    )
    assert "kafka.after_dlq_commit" in FAILPOINTS
    child = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, FAILPOINT_ENV: "kafka.after_dlq_commit"},
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL
    assert child.stdout == "passed\n"
