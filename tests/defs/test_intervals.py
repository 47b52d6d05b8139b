"""The sensor intervals from the environment: defaults, overrides, refused values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assets_project.defs.intervals import interval_seconds


def test_default_when_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_INTERVAL", raising=False)
    assert interval_seconds("SOME_INTERVAL", 15) == 15
    monkeypatch.setenv("SOME_INTERVAL", "  ")
    assert interval_seconds("SOME_INTERVAL", 15) == 15
    monkeypatch.setenv("SOME_INTERVAL", "5")
    assert interval_seconds("SOME_INTERVAL", 15) == 5


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "fast", "1e3"])
def test_refused_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("SOME_INTERVAL", text)
    with pytest.raises(ValueError, match="SOME_INTERVAL"):
        interval_seconds("SOME_INTERVAL", 15)


def test_the_definitions_use_them() -> None:
    """Loaded with the variables set, the sensors evaluate at those intervals."""
    code = (
        "from assets_project.definitions import defs\n"
        "print(defs.resolve_sensor_def('users_file_sensor').minimum_interval_seconds,"
        " defs.resolve_sensor_def('automation_condition_sensor').minimum_interval_seconds)"
    )
    env = {**os.environ, "FILE_SENSOR_INTERVAL_SECONDS": "4", "AUTOMATION_INTERVAL_SECONDS": "7"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-2:] == ["4", "7"]
