"""How to reach a Kafka cluster, and how the ingestion's consumers are tuned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fetch big: with assign() and these settings a local broker delivers >100k msgs/s.
CONSUMER_DEFAULTS: dict[str, object] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 << 20,
    "max.partition.fetch.bytes": 16 << 20,
    "queued.max.messages.kbytes": 64 << 10,  # prefetch per partition while a chunk commits
    "queued.min.messages": 200_000,
    "fetch.wait.max.ms": 100,
}

ConfigValue = str | int | float | bool
"""A librdkafka configuration value."""


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster (librdkafka property names come from here only)."""

    bootstrap_servers: str
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    client_id: str = "assets_project"

    def client_config(self, **extra: Any) -> dict[str, ConfigValue]:
        """librdkafka configuration for a consumer, producer or admin client."""
        config: dict[str, ConfigValue] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
        }
        if self.security_protocol:
            config["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password
        return config | extra
