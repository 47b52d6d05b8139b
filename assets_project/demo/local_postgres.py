"""The machine's own PostgreSQL cluster, for tests and benchmarks when DATABASE_URL is not set.

Debian's ``pg_ctlcluster`` starts the first cluster if it is down (this needs root), and a login
role that may create databases (and roles, for the credential tests) gets a fresh random
password for this process. Nothing here is used by the pipeline itself, which only reads
``DATABASE_URL``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

from psycopg.conninfo import make_conninfo

ROLE = "lakehouse_test"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def start_local_cluster(role: str = ROLE) -> tuple[str | None, str]:
    """Start the machine's first cluster and make ``role``; (admin conninfo or None, why not)."""
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        return None, "no pg_lsclusters here, or not root (cannot start the cluster)"
    clusters = _run("pg_lsclusters", "--no-header").stdout.split()
    if len(clusters) < 4:
        return None, "no PostgreSQL cluster is set up on this machine"
    version, name, port, status = clusters[:4]
    if status != "online":
        started = _run("pg_ctlcluster", version, name, "start")
        if started.returncode != 0:
            return None, f"pg_ctlcluster {version} {name} start failed: {started.stderr.strip()}"
    password = secrets.token_hex(16)
    statement = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN CREATEDB CREATEROLE; END IF; END $$; "
        f"ALTER ROLE {role} CREATEROLE PASSWORD '{password}';"
    )
    made = _run("runuser", "-u", "postgres", "--", "psql", "-p", port, "-qc", statement)
    if made.returncode != 0:
        return None, f"cannot create the role {role}: {made.stderr.strip()}"
    url = make_conninfo(
        host="127.0.0.1", port=port, user=role, password=password, dbname="postgres"
    )
    return url, ""
