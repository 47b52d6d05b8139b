"""Tests of the demo data generator. The ``generate`` command of ``python -m assets_project.demo``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "assets_project.demo", "generate", "--size", "300"]
    command += ["--seed", "9", "--out", str(out), "--files", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "user_events" in result.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["parameters"]["files"] == 1
    assert manifest["sources"]["user_events"]["defects"]["duplicate_across_files"] == 0
    assert (out / "user_events" / "user_events_0001.jsonl").exists()
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 2
    assert "already holds" in again.stderr
