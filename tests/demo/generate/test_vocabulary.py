"""Tests of the demo data generator. The vocabularies and rates: how many records go with a size."""

from __future__ import annotations

from assets_project.demo.generate import Scale


def test_scale() -> None:
    assert Scale.for_size(500) == Scale(events=500, users=50, products=20, orders=100)
    assert Scale.for_size(1_000_000) == Scale(1_000_000, 50_000, 5_000, 100_000)
