"""The demo Kafka producer: its messages, and the command line without a broker configured."""

from __future__ import annotations

import json

import pytest

from assets_project.demo.__main__ import main
from assets_project.demo.produce import POISON, event_lines, with_poison


def test_poison_is_spread_among_the_generated_events() -> None:
    lines = event_lines(500, seed=1)
    assert len(lines) >= 500
    mixed = with_poison(lines, 7, seed=1)
    assert len(mixed) == len(lines) + 7
    assert [m for m in mixed if m not in POISON] == [line for line in lines if line not in POISON]
    assert with_poison(lines, 7, seed=1) == mixed  # reproducible from the seed
    for poison in POISON:
        with pytest.raises(ValueError):  # not JSON at all (UnicodeDecodeError included)
            json.loads(poison)


def test_produce_without_bootstrap_servers_exits_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["produce", "--events", "10"]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err
