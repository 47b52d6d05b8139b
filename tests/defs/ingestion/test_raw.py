"""The raw-asset kit: the one channel-choice rule of every raw asset."""

from __future__ import annotations

import dagster as dg
import pytest

from assets_project.defs.ingestion.raw import choose_channel
from assets_project.lib.contracts import load_contract

ORDERS = load_contract("orders")  # files + postgres
EVENTS = load_contract("user_events")  # files + kafka


@pytest.mark.parametrize(
    ("requested", "path", "configured", "expected"),
    [
        ("auto", "orders/o.csv", True, "files"),  # a named drop is always read as a file
        ("auto", None, True, "postgres"),  # the service when it is configured
        ("auto", None, False, "files"),  # else the ready drops (make dev, no services)
        ("postgres", None, False, "postgres"),  # explicit wins (the asset says why not)
        ("files", None, True, "files"),
    ],
)
def test_channel_rule(requested: str, path: str | None, configured: bool, expected: str) -> None:
    chosen = choose_channel(
        ORDERS, requested=requested, path=path, service="postgres", configured=configured
    )
    assert chosen == expected


def test_the_same_rule_serves_every_service() -> None:
    assert choose_channel(
        EVENTS, requested="auto", path=None, service="kafka", configured=True
    ) == ("kafka")
    assert (
        choose_channel(EVENTS, requested="auto", path=None, service="kafka", configured=False)
        == "files"
    )


def test_a_source_without_a_file_channel_never_reads_files() -> None:
    streamed_only = EVENTS.model_copy(update={"channels": ("kafka",)})
    # auto with nothing configured goes to the service, which then says it is not configured
    assert (
        choose_channel(
            streamed_only, requested="auto", path=None, service="kafka", configured=False
        )
        == "kafka"
    )
    with pytest.raises(dg.Failure, match="has no file channel"):
        choose_channel(
            streamed_only, requested="files", path=None, service="kafka", configured=True
        )
    with pytest.raises(dg.Failure, match="has no file channel"):
        choose_channel(
            streamed_only, requested="auto", path="x.jsonl", service="kafka", configured=True
        )
