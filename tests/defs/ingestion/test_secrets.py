"""No credential reaches Dagster's storage: events, runs and compute logs, searched byte by byte.

A real PostgreSQL role gets a password with every character that breaks a connection string
(``%``, a space, ``@``, ``/``, ``#``, both quotes). ``raw/orders`` is then materialized through
Dagster on an on-disk instance, with ``DATABASE_URL`` read from the environment as in
production, once per way a user gets the URL wrong: an unencoded URI (libpq quotes the piece of
the password it chokes on), a wrong password, a malformed and a well-formed ``key=value``
string. Afterwards every stored event, run and file under the instance's folder is searched for
the passwords, their encoded and escaped forms and any five characters in a row of them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from assets_project.defs.ingestion.kafka import build_stream_sensor
from assets_project.defs.ingestion.postgres import (
    DatabaseSourceConfig,
    build_database_source_asset,
)
from assets_project.defs.resources import KafkaResource, LakeResource, PostgresResource
from assets_project.demo.shop_db import init_orders
from assets_project.lib.contracts import load_contract
from assets_project.lib.lake import LakeLayout
from assets_project.lib.postgres import extract_table, retrying
from tests.conftest import require_service

ORDERS = load_contract("orders")
OP = "raw__orders"
PASSWORD = "h5s3cr%t p@ss/#'\"Qx"
WRONG_PASSWORD = "wr0ng%t p@ss/#'\"Zy"
FRAGMENT = 5
"""Any this many characters in a row of a password count as a leak."""


def _forms(secret: str) -> set[str]:
    """The ways a secret can be written down: as is, percent-encoded, JSON/repr/libpq-escaped."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        json.dumps(json.dumps(secret)[1:-1])[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),
    }


def leaked_pieces(secrets: list[str]) -> set[bytes]:
    """Every run of FRAGMENT characters of every form of the secrets, as bytes."""
    pieces: set[bytes] = set()
    for secret in secrets:
        for form in _forms(secret):
            for i in range(len(form) - FRAGMENT + 1):
                pieces.add(form[i : i + FRAGMENT].encode())
    return pieces


def find_leaks(blobs: dict[str, bytes], secrets: list[str]) -> dict[str, list[bytes]]:
    """Where (by name) each blob holds a piece of a secret."""
    pieces = leaked_pieces(secrets)
    found = {name: sorted(p for p in pieces if p in blob) for name, blob in blobs.items()}
    return {name: hits for name, hits in found.items() if hits}


def stored_blobs(instance: dg.DagsterInstance, home: Path) -> dict[str, bytes]:
    """Everything the instance stored: each run, its job and plan snapshots (kept compressed
    in the run storage, so a byte search of the files alone would miss them) and each event,
    serialized, and every file under the instance's folder."""
    blobs: dict[str, bytes] = {}
    for run in instance.get_runs():
        blobs[f"run {run.run_id}"] = dg.serialize_value(run).encode()
        if run.job_snapshot_id:
            snapshot = instance.get_job_snapshot(run.job_snapshot_id)
            blobs[f"job snapshot {run.run_id}"] = dg.serialize_value(snapshot).encode()
        if run.execution_plan_snapshot_id:
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            blobs[f"plan snapshot {run.run_id}"] = dg.serialize_value(plan).encode()
        for index, entry in enumerate(instance.all_logs(run.run_id)):
            text = dg.serialize_value(entry)
            if entry.dagster_event is not None:
                text += str(entry.dagster_event.event_specific_data)
            blobs[f"event {run.run_id}/{index}"] = text.encode()
    for path in home.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    return blobs


@dataclass(frozen=True)
class SecretRole:
    """A login role whose password breaks connection strings, on a database with orders."""

    name: str
    host: str
    port: str
    dbname: str
    orders: int

    def uri(self, password: str, *, encode: bool = True) -> str:
        secret = quote(password, safe="") if encode else password
        return f"postgresql://{self.name}:{secret}@{self.host}:{self.port}/{self.dbname}"

    def key_value(self, password: str) -> str:
        return make_conninfo(
            host=self.host, port=self.port, user=self.name, password=password, dbname=self.dbname
        )


@pytest.fixture
def secret_role(postgres_server: str, postgres_url: str) -> Iterator[SecretRole]:
    """A role with PASSWORD that may read the orders of the test database."""
    orders = init_orders(postgres_url, size=500, seed=7, defects=0.0)
    name = f"secret_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        try:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(PASSWORD)
                )
            )
        except psycopg.errors.InsufficientPrivilege:
            require_service(
                False,
                "a PostgreSQL role that may create roles (CREATEROLE)",
                "ALTER ROLE <the DATABASE_URL role> CREATEROLE",
            )
    params = conninfo_to_dict(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(sql.SQL("GRANT SELECT ON orders TO {}").format(sql.Identifier(name)))
    yield SecretRole(
        name=name,
        host=str(params.get("host") or "127.0.0.1"),
        port=str(params.get("port") or "5432"),
        dbname=str(params["dbname"]),
        orders=orders,
    )
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(sql.SQL("REVOKE ALL ON orders FROM {}").format(sql.Identifier(name)))
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _materialize_from_env(
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    lake: LakeResource,
    database_url: str,
) -> dg.ExecuteInProcessResult:
    """Materialize raw/orders with DATABASE_URL taken from the environment (dg.EnvVar)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return dg.materialize(
        [build_database_source_asset(ORDERS)],
        resources={"lake": lake, "postgres": PostgresResource.from_env()},
        instance=instance,
        run_config=dg.RunConfig(ops={OP: DatabaseSourceConfig(channel="postgres")}),
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The stored failure of raw/orders with its whole chain (as Dagster shows it)."""
    assert not result.success
    failure = result.failure_data_for_node(OP)
    assert failure is not None and failure.error is not None
    return failure.error.to_string()


def test_no_credential_reaches_the_event_log_run_storage_or_compute_logs(
    secret_role: SecretRole,
    lake: LakeResource,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        # The password is right: the role and its password work (so the failures below are
        # about the connection string, not the role).
        good = _materialize_from_env(monkeypatch, instance, lake, secret_role.uri(PASSWORD))
        assert good.success
        [materialization] = good.asset_materializations_for_node(OP)
        assert materialization.metadata["rows_in"].value == secret_role.orders > 0

        # An unencoded password in a URI: libpq quotes the piece it cannot decode.
        unencoded = _failure(
            _materialize_from_env(
                monkeypatch, instance, lake, secret_role.uri(PASSWORD, encode=False)
            )
        )
        assert "DATABASE_URL is not a valid connection string" in unencoded
        assert "invalid percent-encoded token" in unencoded
        assert "percent-encode" in unencoded

        # The server refuses the password.
        wrong = _failure(
            _materialize_from_env(monkeypatch, instance, lake, secret_role.uri(WRONG_PASSWORD))
        )
        assert f'password authentication failed for user "{secret_role.name}"' in wrong

        # key=value with the password unquoted: libpq quotes the words after the space.
        malformed = _failure(
            _materialize_from_env(
                monkeypatch,
                instance,
                lake,
                f"host={secret_role.host} port={secret_role.port} user={secret_role.name} "
                f"password={PASSWORD} dbname={secret_role.dbname}",
            )
        )
        assert "not a valid connection string" in malformed
        assert 'missing "="' in malformed

        # key=value, correctly quoted, wrong password.
        refused = _failure(
            _materialize_from_env(
                monkeypatch, instance, lake, secret_role.key_value(WRONG_PASSWORD)
            )
        )
        assert "password authentication failed" in refused

        runs = instance.get_runs()
        assert len(runs) == 5
        blobs = stored_blobs(instance, home)

    compute_logs = [name for name in blobs if "compute_logs" in name]
    assert compute_logs, "no compute log was written: the search below would prove nothing"
    assert any(name.startswith("event ") for name in blobs)
    assert any(name.startswith("job snapshot ") for name in blobs)
    leaks = find_leaks(blobs, [PASSWORD, WRONG_PASSWORD])
    assert not leaks, f"credentials stored by Dagster: {leaks}"


def test_transient_failures_and_their_retry_log_lines_carry_no_credential(
    secret_role: SecretRole, layout: LakeLayout, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the port: tenacity logs each retry and re-raises the last error."""
    unreachable = secret_role.key_value(PASSWORD).replace(f"port={secret_role.port}", "port=1")
    retry = retrying(attempts=2, max_wait=0.01)
    caplog.set_level(logging.WARNING)
    with pytest.raises(psycopg.OperationalError, match="refused") as raised:
        for attempt in retry:
            with attempt:
                extract_table(unreachable, ORDERS, layout, batch_id="b1", connect_timeout=2)
    assert retry.statistics["attempt_number"] == 2
    assert "Retrying" in caplog.text
    error = raised.value
    chain = []
    while error is not None:
        chain.append(f"{error!s} {error!r} {error.args!r}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    blobs = {"log": caplog.text.encode(), "error chain": " ".join(chain).encode()}
    assert not find_leaks(blobs, [PASSWORD])


def test_the_kafka_sensor_says_why_without_the_sasl_password(
    lake: LakeResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "lakehouse")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    kafka = KafkaResource.from_env()
    assert PASSWORD not in repr(kafka.settings)
    sensor = build_stream_sensor(load_contract("user_events"))
    with dg.build_sensor_context(resources={"lake": lake, "kafka": kafka}) as context:
        skipped = sensor(context)
    assert isinstance(skipped, dg.SkipReason), skipped
    reason = skipped.skip_message
    assert "is not reachable" in (reason or "")
    assert not find_leaks({"skip reason": (reason or "").encode()}, [PASSWORD])
