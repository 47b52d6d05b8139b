"""Shared fixtures: a throw-away data folder laid out like the real one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assets_project.defs.resources import LakeResource
from assets_project.lib.lake import LakeLayout


@pytest.fixture
def layout(tmp_path: Path) -> LakeLayout:
    """Landing, archive, quarantine and lake under a fresh temporary folder."""
    data = tmp_path / "data"
    for name in ("users", "products", "orders", "user_events"):
        (data / "landing" / name).mkdir(parents=True)
    return LakeLayout(
        data_dir=data, lake_uri=str(data / "lake"), warehouse_path=data / "warehouse.duckdb"
    )


@pytest.fixture
def lake(layout: LakeLayout) -> LakeResource:
    """The lake resource over ``layout``, with no settle delay."""
    return LakeResource(
        data_dir=str(layout.data_dir),
        lake_uri=layout.lake_uri,
        warehouse_path=str(layout.warehouse_path),
        settle_seconds=0,
    )


def require_service(available: bool, what: str, install: str) -> None:
    """Skip a test whose service is missing, or fail it when REQUIRE_SERVICES=1 (as in CI)."""
    if available:
        return
    message = f"{what} is not available here; install it with: {install}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1: {message}")
    pytest.skip(message)


# A real PostgreSQL server (postgres_server) and a fresh database per test (postgres_url).
from tests.postgres_server import postgres_server, postgres_url  # noqa: E402, F401
