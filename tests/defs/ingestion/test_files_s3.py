"""The file sensor and raw asset with the landing zone and the lake on S3 (moto's server):
one run per object, the object archived after its commit, no second run for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets_project.defs.ingestion.files import (
    RUN_KEY_TAG,
    build_file_drop_asset,
    build_file_drop_sensor,
)
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import delta_table, open_table
from assets_project.lib.landing import LandingPolicy
from tests.services.s3 import MotoS3

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROWS = (
    "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    "2,not-an-email,2026-01-01,free,europe,2026-01-02 10:00:00\n"
)


@pytest.fixture
def on_s3(
    s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LakeResource, str]]:
    """A lake and a landing zone in one fresh bucket; LANDING_URI set before the sensor and
    the asset are built (as the code location reads it when it loads)."""
    bucket = s3.create_bucket()
    landing = f"s3://{bucket}/landing"
    monkeypatch.setenv("LANDING_URI", landing)
    yield (
        LakeResource(
            data_dir=str(tmp_path / "data"),
            lake_uri=f"s3://{bucket}/lake",
            warehouse_path=str(tmp_path / "data" / "warehouse.duckdb"),
            settle_seconds=0,
            landing_uri=landing,
        ),
        bucket,
    )


def _tick(lake: LakeResource, cursor: str | None, instance: dg.DagsterInstance) -> dg.SensorResult:
    sensor = build_file_drop_sensor(USERS, LandingPolicy(), lambda: time.time() + 60)
    resources = {"lake": lake}
    with dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance) as ctx:
        return sensor(ctx)


def test_an_object_is_ingested_once_then_archived(
    on_s3: tuple[LakeResource, str], s3: MotoS3
) -> None:
    lake, bucket = on_s3
    client = s3.client()
    client.put_object(Bucket=bucket, Key="landing/users/users_0001.csv", Body=HEADER + ROWS)
    with dg.instance_for_test() as instance:
        first = _tick(lake, None, instance)
        (request,) = first.run_requests
        assert request.run_config["ops"]["raw__users"]["config"] == {"path": "users/users_0001.csv"}
        assert "users/users_0001.csv" in request.run_key

        result = dg.materialize(
            [build_file_drop_asset(USERS, retry_policy=None)],
            instance=instance,
            resources={"lake": lake},
            run_config=request.run_config,
            tags={**request.tags, RUN_KEY_TAG: request.run_key},
        )
        assert result.success

        raw = delta_table(lake.layout.raw_uri("users")).to_pyarrow_table().to_pylist()
        assert [(r["user_id"], r["_source"]) for r in raw] == [(1, "users/users_0001.csv")]
        dlq = open_table(lake.layout.dlq_uri("users"))
        assert dlq is not None and dlq.to_pyarrow_table().num_rows == 1  # the bad e-mail
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        assert "landing/users/users_0001.csv" not in keys
        assert "archive/users/users_0001.csv" in keys
        assert not any(k.startswith(f"{bucket}/lake") for k in keys)
        assert not (Path(lake.data_dir) / "lake").exists()  # the lake is on S3 only

        second = _tick(lake, first.cursor, instance)
        assert second.run_requests == []


def test_a_run_config_naming_an_object_outside_the_source_fails_without_reading_it(
    on_s3: tuple[LakeResource, str], s3: MotoS3
) -> None:
    lake, bucket = on_s3
    s3.client().put_object(Bucket=bucket, Key="landing/orders/o.csv", Body=b"order_id\n1\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_file_drop_asset(USERS, retry_policy=None)],
            instance=instance,
            resources={"lake": lake},
            run_config={"ops": {"raw__users": {"config": {"path": "users/../orders/o.csv"}}}},
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_failure_data.error is not None
    assert open_table(lake.layout.raw_uri("users")) is None or (
        delta_table(lake.layout.raw_uri("users")).to_pyarrow_table().num_rows == 0
    )
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert "landing/orders/o.csv" in keys  # never moved


def test_the_code_location_loads_with_the_landing_zone_on_s3() -> None:
    """With LANDING_URI set, the definitions load and the file sensors say where they look
    (a sensor that declared the s3 resource beside its ``lake`` parameter made them fail)."""
    code = (
        "from assets_project.definitions import defs\n"
        "defs.validate_loadable(defs)\n"
        "print(defs.resolve_sensor_def('users_file_sensor').description)"
    )
    env = {**os.environ, "LANDING_URI": "s3://some-bucket/landing"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LANDING_URI/users/" in out.stdout
