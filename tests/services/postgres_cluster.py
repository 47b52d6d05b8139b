"""The machine's own PostgreSQL cluster, for tests and benchmarks when DATABASE_URL is not set.

Debian's ``pg_ctlcluster`` starts the first cluster if it is down (this needs root), and a login
role of this process's own (``lakehouse_test_<random>``, so two test sessions on one machine
never change each other's password) that may create databases (and roles, for the credential
tests) is made with a random password;
``drop_role`` removes it. Nothing here is used by the pipeline, which only reads ``DATABASE_URL``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROLE_PREFIX = "lakehouse_test"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def _cluster() -> tuple[str, str, str, str] | None:
    clusters = _run("pg_lsclusters", "--no-header").stdout.split()
    if len(clusters) < 4:
        return None
    version, name, port, status = clusters[:4]
    return version, name, port, status


def start_local_cluster(role_prefix: str = ROLE_PREFIX) -> tuple[str | None, str]:
    """Start the machine's first cluster and make a role of this process's own.

    Returns (conninfo of the role, or None; why not). The role is ``<role_prefix>_<random>``.
    """
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        return None, "no pg_lsclusters here, or not root (cannot start the cluster)"
    cluster = _cluster()
    if cluster is None:
        return None, "no PostgreSQL cluster is set up on this machine"
    version, name, port, status = cluster
    role = f"{role_prefix}_{secrets.token_hex(4)}"
    if status != "online":
        started = _run("pg_ctlcluster", version, name, "start")
        if started.returncode != 0:
            return None, f"pg_ctlcluster {version} {name} start failed: {started.stderr.strip()}"
    password = secrets.token_hex(16)
    statement = f"CREATE ROLE {role} LOGIN CREATEDB CREATEROLE PASSWORD '{password}';"
    made = _run("runuser", "-u", "postgres", "--", "psql", "-p", port, "-qc", statement)
    if made.returncode != 0:
        return None, f"cannot create the role {role}: {made.stderr.strip()}"
    url = make_conninfo(
        host="127.0.0.1", port=port, user=role, password=password, dbname="postgres"
    )
    return url, ""


def drop_role(conninfo: str, role_prefix: str = ROLE_PREFIX) -> None:
    """Drop the role ``start_local_cluster`` made (with whatever it still owns)."""
    role = conninfo_to_dict(conninfo).get("user")
    cluster = _cluster()
    if not role or not str(role).startswith(f"{role_prefix}_") or cluster is None:
        return
    port = cluster[2]
    owner = f"(SELECT oid FROM pg_roles WHERE rolname = '{role}')"
    owned = _psql(port, f"SELECT datname FROM pg_database WHERE datdba = {owner}").split()
    for database in owned:
        _psql(port, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _psql(port, f"DROP ROLE IF EXISTS {role}")


def _psql(port: str, statement: str) -> str:
    """Run ``statement`` as the postgres superuser; its unaligned output."""
    return _run("runuser", "-u", "postgres", "--", "psql", "-p", port, "-Atqc", statement).stdout
