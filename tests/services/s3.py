"""A real S3 endpoint on 127.0.0.1: moto in server mode, started and stopped by the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.services.tansu import free_port


class S3Unavailable(RuntimeError):
    """moto's server could not be started."""


@dataclass
class MotoS3:
    """A running moto S3 server; ``environment`` is what a client (delta-rs, boto3, dagster-aws)
    needs to reach it, credentials included (random per server, so that a test can search the
    stored events, logs and metadata for them)."""

    process: subprocess.Popen[bytes]
    port: int
    access_key: str = field(default_factory=lambda: f"AKIAMOTO{uuid.uuid4().hex[:12].upper()}")
    secret_key: str = field(default_factory=lambda: f"moto-secret-{uuid.uuid4().hex}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """A new, empty bucket (a fresh random name unless ``name`` is given)."""
        bucket = name or f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    @classmethod
    def start(cls, timeout: float = 30.0) -> MotoS3:
        """Start ``moto.server`` on a free 127.0.0.1 port and wait until it answers."""
        port = free_port()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise S3Unavailable(str(exc)) from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise S3Unavailable(f"moto.server exited with code {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return cls(process=process, port=port)
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise S3Unavailable(f"moto.server did not listen on port {port} within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
