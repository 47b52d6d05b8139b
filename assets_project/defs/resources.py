"""Resources shared by the asset graph: where the lake lives, how dbt is invoked, Kafka."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from assets_project.lib.kafka import KafkaSettings
from assets_project.lib.lake import LakeLayout
from assets_project.lib.landing_s3 import S3Landing
from assets_project.lib.redact import Redactor, connection_secrets, environment_secrets


class LakeResource(dg.ConfigurableResource):
    """The data folder (landing, archive, quarantine), the Delta lake URI and the warehouse.

    ``landing_uri`` (``LANDING_URI=s3://bucket/prefix``) moves the landing zone to S3, with
    ``archive_uri`` and ``quarantine_uri`` defaulting to the prefix's siblings (see
    :mod:`assets_project.lib.landing_s3`); unset, drops land in ``<data_dir>/landing``.
    """

    data_dir: str
    lake_uri: str
    warehouse_path: str
    settle_seconds: float = 5.0
    landing_uri: str | None = None
    archive_uri: str | None = None
    quarantine_uri: str | None = None

    @classmethod
    def from_env(cls) -> LakeResource:
        """Configured from DATA_DIR, LAKE_URI, WAREHOUSE_PATH, LANDING_SETTLE_SECONDS and, for
        a landing zone on S3, LANDING_URI, ARCHIVE_URI and QUARANTINE_URI."""
        layout = LakeLayout.from_env()
        return cls(
            data_dir=str(layout.data_dir),
            lake_uri=layout.lake_uri,
            warehouse_path=str(layout.warehouse_path),
            settle_seconds=float(os.environ.get("LANDING_SETTLE_SECONDS", "5")),
            landing_uri=os.environ.get("LANDING_URI") or None,
            archive_uri=os.environ.get("ARCHIVE_URI") or None,
            quarantine_uri=os.environ.get("QUARANTINE_URI") or None,
        )

    @property
    def redactor(self) -> Redactor:
        """Replaces the environment's secrets (an S3 lake's ``AWS_SECRET_ACCESS_KEY`` and
        ``AWS_SESSION_TOKEN``, which delta-rs reads from there) in errors of lake access."""
        return Redactor(environment_secrets())

    @property
    def s3_landing(self) -> S3Landing | None:
        """The landing zone on S3, or None when drops land in the local folder."""
        if not self.landing_uri:
            return None
        return S3Landing.from_uris(self.landing_uri, self.archive_uri, self.quarantine_uri)

    @property
    def layout(self) -> LakeLayout:
        return LakeLayout(
            data_dir=Path(self.data_dir),
            lake_uri=self.lake_uri,
            warehouse_path=Path(self.warehouse_path),
        )

    @contextmanager
    def dbt_environment(self) -> Iterator[None]:
        """Environment for a dbt process started inside the block.

        Exports the lake URI and warehouse path, and makes dbt's indirect test selection
        ``buildable``: a partial run (as automation starts them) runs a test only when every
        model it reads is selected or upstream of the selection, never one that reads a model
        which may not exist yet.
        """
        values = {
            "LAKE_URI": self.lake_uri,
            "WAREHOUSE_PATH": self.warehouse_path,
            "DBT_INDIRECT_SELECTION": "buildable",
        }
        previous = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def landing_on_s3() -> bool:
    """Whether ``LANDING_URI`` puts the landing zone on S3 (read when definitions are built:
    the file sensors and raw assets then require the ``s3`` resource)."""
    return bool(os.environ.get("LANDING_URI"))


def s3_resource_from_env() -> S3Resource:
    """The ``s3`` resource of a landing zone on S3. Endpoint (``AWS_ENDPOINT_URL``) and
    credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, a
    profile or an instance role) are read by boto3 from the environment, never configured
    here; only the region, which is no secret, is passed on when set."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return S3Resource(region_name=region or None)


class PostgresResource(dg.ConfigurableResource):
    """The operational shop database that PostgreSQL-fed sources are extracted from.

    ``url`` is a libpq connection string or URI; give it as ``dg.EnvVar("DATABASE_URL")`` so
    that the secret stays in the environment. Without it, the database channel is idle.
    """

    url: str | None = None
    connect_timeout_s: int = 10

    @classmethod
    def from_env(cls) -> PostgresResource:
        """Configured from DATABASE_URL when it is set; unconfigured otherwise."""
        if os.environ.get("DATABASE_URL"):
            return cls(url=dg.EnvVar("DATABASE_URL"))
        return cls()

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def redactor(self) -> Redactor:
        """Replaces the connection string, its password and the environment's secrets."""
        return Redactor.for_connection(self.url)


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster that streaming sources read from (unset: the streams stay idle).

    ``min_lag`` and ``max_wait_seconds`` tune the stream sensors: a run is requested once the
    unread messages reach ``min_lag``, or once fewer have waited ``max_wait_seconds``.
    """

    bootstrap_servers: str | None = None
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    group_id: str = "assets_project"
    timeout_seconds: float = 10.0
    min_lag: int = 1
    max_wait_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> KafkaResource:
        """From KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
        KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD (read as ``dg.EnvVar``, only when set),
        KAFKA_GROUP_ID, KAFKA_MIN_LAG and KAFKA_MAX_WAIT_SECONDS."""
        values: dict[str, Any] = {}
        for field, variable in (
            ("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
            ("security_protocol", "KAFKA_SECURITY_PROTOCOL"),
            ("sasl_mechanism", "KAFKA_SASL_MECHANISM"),
            ("sasl_username", "KAFKA_SASL_USERNAME"),
            ("sasl_password", "KAFKA_SASL_PASSWORD"),
            ("group_id", "KAFKA_GROUP_ID"),
        ):
            if os.environ.get(variable):
                values[field] = dg.EnvVar(variable)
        if os.environ.get("KAFKA_MIN_LAG"):
            values["min_lag"] = int(os.environ["KAFKA_MIN_LAG"])
        if os.environ.get("KAFKA_MAX_WAIT_SECONDS"):
            values["max_wait_seconds"] = float(os.environ["KAFKA_MAX_WAIT_SECONDS"])
        return cls(**values)

    @property
    def configured(self) -> bool:
        return bool(self.bootstrap_servers)

    @property
    def redactor(self) -> Redactor:
        """Replaces the SASL password, credentials in the bootstrap servers and the
        environment's secrets."""
        return Redactor(
            {
                *environment_secrets(),
                *connection_secrets(self.bootstrap_servers or ""),
                self.sasl_password,
            }
        )

    @property
    def settings(self) -> KafkaSettings:
        """Client settings; raises ValueError when no bootstrap servers are configured."""
        if not self.bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set")
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password,
        )
