"""End to end on an S3 lake (moto's server on 127.0.0.1): the same drops give the same marts as
on local disk, the checks and lake maintenance run there too, and no credential of the store
appears in anything Dagster stored (run config, tags, events, compute logs, the instance's
files)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.lake.maintenance import maintenance_assets, small_files_checks
from assets_project.defs.quality.anomalies import anomaly_checks, source_stopped_checks
from assets_project.defs.quality.checks import contract_checks, schema_drift_checks
from assets_project.defs.quality.freshness import event_time_freshness_checks
from assets_project.defs.quality.marts import mart_suites
from assets_project.defs.resources import LakeResource
from assets_project.demo.generate import generate
from assets_project.lib.lake import S3_COMMIT_VARIABLES, delta_table
from tests.e2e.pipeline import FILES_ONLY, RAW_ASSETS, lake_in, pipeline_resources
from tests.e2e.test_pipeline import MARTS, _marts
from tests.services.s3 import MotoS3

pytestmark = pytest.mark.slow

#: Mart columns that say when a run staged or built the rows (differ between any two runs).
STAGING_TIME = ["last_staged_at", "last_built_at"]

RAW_CHECKS = [
    *contract_checks,
    *schema_drift_checks,
    *anomaly_checks,
    *source_stopped_checks,
    *event_time_freshness_checks,
]


def _drop(pristine: Path, landing: Path) -> None:
    """Copy every generated file into ``landing``, one folder per source."""
    for folder in (p for p in pristine.iterdir() if p.is_dir()):
        (landing / folder.name).mkdir(parents=True)
        for path in sorted(folder.iterdir()):
            shutil.copy2(path, landing / folder.name)


def _everything(
    lake: LakeResource, instance: dg.DagsterInstance, *, maintenance: bool = False
) -> dg.ExecuteInProcessResult:
    """Every raw asset with its checks, every dbt model with the marts' suites (and, with
    ``maintenance``, the lake maintenance of every table with its small-files check)."""
    assets = [*RAW_ASSETS, shop_dbt_models, *(maintenance_assets if maintenance else [])]
    checks = [*RAW_CHECKS, *mart_suites, *(small_files_checks if maintenance else [])]
    return dg.materialize(
        [*assets, *checks],
        resources=pipeline_resources(lake),
        instance=instance,
        run_config=FILES_ONLY,
        raise_on_error=False,
    )


def _s3_lake(s3: MotoS3, data: Path, bucket: str | None = None) -> LakeResource:
    return LakeResource(
        data_dir=str(data),
        lake_uri=f"s3://{bucket or s3.create_bucket()}/lake",
        warehouse_path=str(data / "warehouse.duckdb"),
        settle_seconds=0,
    )


@pytest.fixture(scope="module")
def s3_env(s3_server: MotoS3) -> Iterator[MotoS3]:
    """moto's endpoint and random credentials in the environment for the module (as in
    production, where delta-rs, dbt and Dagster's processes read them from there)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_server.environment.items():
            patch.setenv(name, value)
        for name in S3_COMMIT_VARIABLES:
            patch.delenv(name, raising=False)
        yield s3_server


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, s3_env: MotoS3) -> dict[str, object]:
    """The same generated drops through the whole graph on local disk and on S3 (the S3 run on
    a persistent instance, then lake maintenance there)."""
    root = tmp_path_factory.mktemp("e2e_s3")
    pristine = root / "pristine"
    generate(pristine, size=1500, seed=11, files=2)
    local = lake_in(root / "local")
    _drop(pristine, root / "local" / "landing")
    local_result = _everything(local, dg.DagsterInstance.ephemeral())
    s3 = _s3_lake(s3_env, root / "s3")
    _drop(pristine, root / "s3" / "landing")
    home = root / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        s3_result = _everything(s3, instance)
        s3_marts = _marts(s3)
        maintained = _everything(s3, instance, maintenance=True)
        missing = _s3_lake(s3_env, root / "missing", bucket="no-such-bucket-here")
        _drop(pristine, root / "missing" / "landing")
        failed = dg.materialize(
            [*RAW_ASSETS],
            resources=pipeline_resources(missing),
            instance=instance,
            run_config=FILES_ONLY,
            raise_on_error=False,
        )
        stored = _stored(instance, home)
    return {
        "local": local,
        "s3": s3,
        "results": (local_result, s3_result, maintained),
        "marts": (_marts(local), s3_marts),
        "failed": failed,
        "stored": stored,
    }


def _stored(instance: dg.DagsterInstance, home: Path) -> dict[str, str]:
    """Everything the instance holds, as text: each run (config, tags), each run's events
    serialized with Dagster's serdes, the compute logs, and the raw bytes of every file under
    DAGSTER_HOME (the SQLite databases included)."""
    stored: dict[str, str] = {}
    for run in instance.get_runs():
        stored[f"run {run.run_id}"] = serialize_value(run)
        stored[f"run config {run.run_id}"] = repr(run.run_config) + repr(run.tags)
        events = instance.all_logs(run.run_id)
        assert events, f"run {run.run_id} stored no event"
        stored[f"events {run.run_id}"] = "\n".join(serialize_value(e) for e in events)
    for path in home.rglob("*"):
        if path.is_file():
            stored[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return stored


def test_every_run_on_s3_succeeds_and_every_check_passes_as_on_local_disk(
    runs: dict[str, object],
) -> None:
    for result in runs["results"]:  # type: ignore[attr-defined]
        assert result.success
    local, s3, maintained = runs["results"]  # type: ignore[misc]

    def outcomes(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
        return {
            (e.asset_key.to_user_string(), e.check_name): e.passed
            for e in (
                event.asset_check_evaluation_data
                for event in result.all_events
                if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        }

    assert outcomes(s3) == outcomes(local) and outcomes(s3)
    assert all(
        passed for (_, name), passed in outcomes(maintained).items() if name == "small_files"
    )


def test_the_marts_on_s3_equal_the_marts_on_local_disk_row_for_row(
    runs: dict[str, object],
) -> None:
    local, s3 = runs["marts"]  # type: ignore[misc]
    for name in MARTS:
        assert len(local[name]) > 0, name
        # When each run staged its events differs (bookkeeping of the incremental build).
        here, there = (m[name].drop(columns=STAGING_TIME, errors="ignore") for m in (local, s3))
        pd.testing.assert_frame_equal(there, here, check_exact=True, obj=name)


def test_the_s3_lake_holds_the_tables_and_the_local_data_folder_holds_none(
    runs: dict[str, object],
) -> None:
    s3: LakeResource = runs["s3"]  # type: ignore[assignment]
    local: LakeResource = runs["local"]  # type: ignore[assignment]
    operations: set[str] = set()
    for source in ("users", "products", "orders", "user_events"):
        on_s3 = delta_table(s3.layout.raw_uri(source)).count()
        assert on_s3 == delta_table(local.layout.raw_uri(source)).count() > 0
        operations |= {c["operation"] for c in delta_table(s3.layout.raw_uri(source)).history()}
    # maintenance committed on S3 (a VACUUM with nothing past its retention commits nothing)
    assert "OPTIMIZE" in operations, operations
    assert not (Path(s3.data_dir) / "lake").exists()


def test_an_unreachable_bucket_fails_the_run_with_no_credential_in_the_failure(
    runs: dict[str, object], s3_env: MotoS3
) -> None:
    failed: dg.ExecuteInProcessResult = runs["failed"]  # type: ignore[assignment]
    assert not failed.success
    failures = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures
    text = "\n".join(serialize_value(e) for e in failures)
    assert "NoSuchBucket" in text or "no-such-bucket-here" in text  # the store's own error
    assert s3_env.secret_key not in text and s3_env.access_key not in text


def test_no_credential_of_the_store_is_in_anything_the_instance_stored(
    runs: dict[str, object], s3_env: MotoS3
) -> None:
    stored: dict[str, str] = runs["stored"]  # type: ignore[assignment]
    assert any(name.startswith("events ") for name in stored)
    everything = "\n".join(stored.values())
    assert "s3://" in everything  # the lake's URI is there (the search reads the right data)
    assert "no-such-bucket-here" in everything  # ... and so is the failed run
    for name, text in stored.items():
        assert s3_env.secret_key not in text, f"the secret key is in {name}"
        assert s3_env.access_key not in text, f"the access key is in {name}"
