"""The dbt CLI resource answers dagster-dbt's probes without starting dbt."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from assets_project.defs.dbt.project import dbt_project
from assets_project.defs.dbt.resources import ShopDbtCliResource, dbt_resource


def _no_subprocess(*args: object, **kwargs: object) -> bytes:
    raise AssertionError(f"dbt was started: {args}")


def test_version_of_the_venv_dbt_comes_from_the_installed_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("dagster_dbt.core.resource.check_output", _no_subprocess)
    assert str(dbt_resource()._cli_version) == metadata.version("dbt-core")


def test_another_executable_is_asked_for_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "bin" / "dbt"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    calls: list[list[str]] = []

    def fake_check_output(args: list[str]) -> bytes:
        calls.append(args)
        return b"Core:\n  - installed: 1.9.4\n"

    monkeypatch.setattr("dagster_dbt.core.resource.check_output", fake_check_output)
    resource = ShopDbtCliResource(project_dir=dbt_project, dbt_executable=str(other))
    assert str(resource._cli_version) == "1.9.4"
    assert calls == [[str(other), "--version"]]


def test_no_adapter_is_built_in_process() -> None:
    assert dbt_resource()._initialize_dbt_core_adapter(["build"]) is None
