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


def test_dagster_yaml_turns_on_run_monitoring_that_frees_dead_runs_slots(tmp_path: Path) -> None:
    """The settings tests/test_instance_recovery.py relies on (with shortened intervals) ship."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types()
        # A crashed run's slots are free again within 120 + 30 seconds of its end.
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 120
        assert instance.run_monitoring_poll_interval_seconds == 30
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        # The local run launcher cannot resume runs; crashed runs are retried by run_retries.
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert not instance.run_launcher.supports_resume_run
        # Backstop for a run left STARTED with no process left to report its end.
        assert instance.run_monitoring_max_runtime_seconds == 6 * 60 * 60


def test_library_log_lines_inside_a_run_carry_the_run_id(tmp_path: Path) -> None:
    """A module logger of the package, used inside a run, logs into that run's event log."""
    import logging

    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")

    @dg.asset
    def logs_through_a_library() -> None:
        logging.getLogger("assets_project.lib.postgres").info("extracted 3 rows")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = dg.materialize([logs_through_a_library], instance=instance)
        records = instance.all_logs(result.run_id)
    lines = [r for r in records if r.user_message == "extracted 3 rows"]
    assert len(lines) == 1
    assert lines[0].run_id == result.run_id
    assert lines[0].step_key == "logs_through_a_library"
