"""Contract checks on raw assets, run after real ingestion runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from assets_project.defs.ingestion.files import build_file_drop_asset
from assets_project.defs.quality.checks import build_contract_checks
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import load_contract

USERS = load_contract("users")
HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"


def _drop(lake: LakeResource, name: str, text: str) -> None:
    path = Path(lake.data_dir) / "landing" / "users" / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 60, time.time() - 60))


def _run(lake: LakeResource, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [build_file_drop_asset(USERS), build_contract_checks(USERS)],
        resources={"lake": lake},
        instance=instance,
    )
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_clean_batch_passes_every_check(lake: LakeResource) -> None:
    rows = "".join(
        f"{i},u{i}@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n" for i in range(1, 41)
    )
    _drop(lake, "a.csv", HEADER + rows + "41,bad,2026-01-01,free,europe,2026-01-02\n")
    checks = _run(lake, dg.DagsterInstance.ephemeral())
    assert set(checks) == {
        "row_conservation",
        "reject_rate",
        "batch_volume",
        "primary_key_versions_unique",
        "email_unique",
    }
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
    conservation = checks["row_conservation"].metadata
    assert (conservation["records_read"].value, conservation["raw_rows"].value) == (41, 40)
    assert checks["reject_rate"].metadata["reject_rate"].value == round(1 / 41, 4)


def test_reject_rate_warns_then_fails_and_conflicts_are_found(lake: LakeResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _drop(
        lake,
        "a.csv",
        HEADER
        + "1,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "1,other@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "2,a@shop.example,2026-01-01,free,europe,2026-01-02 10:00:00\n"
        + "3,bad-email,2026-01-01,free,europe,2026-01-02 10:00:00\n",
    )
    checks = _run(lake, instance)
    assert not checks["reject_rate"].passed
    assert checks["reject_rate"].severity == dg.AssetCheckSeverity.WARN  # 25%: over warn only
    assert not checks["primary_key_versions_unique"].passed
    assert checks["primary_key_versions_unique"].metadata["conflicts"].value == 1
    assert not checks["email_unique"].passed
    assert checks["row_conservation"].passed

    _drop(lake, "b.csv", HEADER + "4,x,2026-01-01,free,europe,2026-01-02\n" * 3)
    checks = _run(lake, instance)
    assert not checks["reject_rate"].passed
    assert checks["reject_rate"].severity == dg.AssetCheckSeverity.ERROR  # 100% rejected


def test_batch_without_new_records_passes_the_batch_checks(lake: LakeResource) -> None:
    checks = _run(lake, dg.DagsterInstance.ephemeral())
    assert checks["row_conservation"].passed
    assert checks["batch_volume"].passed
