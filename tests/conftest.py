"""Shared fixtures: a throw-away data folder laid out like the real one."""

from __future__ import annotations

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
