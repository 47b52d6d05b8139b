"""File-drop sensors and raw assets against real files in a temporary landing folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from assets_project.defs.ingestion.files import (
    FileDropConfig,
    build_file_drop_asset,
    build_file_drop_sensor,
)
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROW = "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"


def _settled(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    old = time.time() - 120
    os.utime(path, (old, old))
    return path


def _settling(lake: LakeResource, seconds: float) -> LakeResource:
    return LakeResource(
        data_dir=lake.data_dir,
        lake_uri=lake.lake_uri,
        warehouse_path=lake.warehouse_path,
        settle_seconds=seconds,
    )


def _tick(lake: LakeResource, cursor: str | None) -> dg.SensorResult:
    sensor = build_file_drop_sensor(USERS)
    with dg.build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
        return sensor(context)


def test_sensor_requests_one_run_per_file_then_nothing(lake: LakeResource) -> None:
    lake = _settling(lake, 10)
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / "users_0001.csv", HEADER + ROW)
    (landing / "users_0002.csv").write_text(HEADER)  # just written: still settling

    first = _tick(lake, None)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key.startswith("users:users/users_0001.csv:")
    assert request.run_config["ops"]["raw__users"]["config"] == {"path": "users/users_0001.csv"}

    second = _tick(lake, first.cursor)
    assert second.run_requests == []

    # A restart with the stored cursor behaves like the second tick; a run key is stable.
    assert _tick(lake, first.cursor).run_requests == []
    assert _tick(lake, None).run_requests[0].run_key == request.run_key


def test_half_written_file_is_not_requested(lake: LakeResource) -> None:
    lake = _settling(lake, 30)
    landing = Path(lake.data_dir) / "landing" / "users"
    with (landing / "big.csv").open("w") as handle:
        handle.write(HEADER)
        handle.flush()
        result = _tick(lake, None)
    assert result.run_requests == []
    assert "still settling" in str(result.skip_reason)


def test_raw_asset_ingests_archives_and_quarantines(lake: LakeResource) -> None:
    landing = Path(lake.data_dir) / "landing" / "users"
    _settled(landing / "good.csv", HEADER + ROW + "2,broken,2026-01-01,free,europe,x\n")
    _settled(landing / "empty.csv", "")
    asset = build_file_drop_asset(USERS)
    result = dg.materialize([asset], resources={"lake": lake})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw__users")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["rows_in"], meta["rows_written"], meta["rows_rejected"]) == (2, 1, 1)
    assert meta["files_quarantined"] == 1
    assert meta["dagster/row_count"] == 1
    assert [c.name for c in meta["dagster/column_schema"].columns][:2] == ["user_id", "email"]

    data = Path(lake.data_dir)
    assert (data / "archive" / "users" / "good.csv").exists()
    reason = (data / "quarantine" / "users" / "empty.csv.reason").read_text()
    assert "users/empty.csv: file is empty" in reason
    assert not any(landing.iterdir())
    assert DeltaTable(lake.layout.dlq_uri("users")).to_pyarrow_table().num_rows == 1


def test_raw_asset_refuses_paths_outside_landing(lake: LakeResource) -> None:
    outside = Path(lake.data_dir) / "secret.csv"
    outside.write_text(HEADER + ROW)
    asset = build_file_drop_asset(USERS)
    result = dg.materialize(
        [asset],
        resources={"lake": lake},
        run_config=dg.RunConfig(ops={"raw__users": FileDropConfig(path="../secret.csv")}),
        raise_on_error=False,
    )
    assert not result.success
    assert outside.exists()
    assert not Path(lake.layout.raw_uri("users")).exists()
