"""dagster.yaml is a valid instance configuration with the settings the project relies on."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]


def test_dagster_yaml_loads_as_an_instance(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        settings = instance.get_concurrency_config()
        assert settings.pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2
        assert not instance.telemetry_enabled
