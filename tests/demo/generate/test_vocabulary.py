"""Tests of the demo data generator. The vocabularies and rates: how many records go with a size."""

from __future__ import annotations

from assets_project.demo.generate import Scale


def test_scale() -> None:
    # Small demos keep at least 250 users and products (see MIN_USERS, MIN_PRODUCTS).
    assert Scale.for_size(500) == Scale(events=500, users=250, products=250, orders=100)
    assert Scale.for_size(5_000) == Scale(5_000, 250, 250, 500)
    assert Scale.for_size(1_000_000) == Scale(1_000_000, 50_000, 5_000, 100_000)
