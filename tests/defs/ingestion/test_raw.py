"""The raw-asset kit: the one channel-choice rule of every raw asset."""

from __future__ import annotations

import dagster as dg
import pytest

from assets_project.defs.ingestion.raw import choose_channel
from assets_project.lib.contracts import load_contract, source_names

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


def test_raw_assets_carry_the_contract_as_metadata() -> None:
    """Owners, tags, column descriptions and rules of every raw asset come from its contract."""
    from assets_project.definitions import defs

    for name in source_names():
        contract = load_contract(name)
        spec = defs.resolve_assets_def(dg.AssetKey(["raw", name])).specs_by_key[
            dg.AssetKey(["raw", name])
        ]
        assert spec.owners == [contract.owner, f"team:{contract.team}"]
        assert spec.tags["contract_version"] == contract.semver
        assert spec.metadata["contract"] == f"assets_project/contracts/raw/{name}.odcs.yaml"
        schema = spec.metadata["dagster/column_schema"].schema
        by_name = {c.name: c for c in schema.columns}
        for column in contract.columns:
            assert by_name[column.name].description == column.description
            assert by_name[column.name].constraints.nullable is not column.required
    orders = load_contract("orders")
    spec = defs.resolve_assets_def(dg.AssetKey(["raw", "orders"])).specs_by_key[
        dg.AssetKey(["raw", "orders"])
    ]
    columns = {c.name: c for c in spec.metadata["dagster/column_schema"].schema.columns}
    assert columns["order_id"].constraints.other == ["primary key"]
    assert columns["quantity"].constraints.other == ["min 1", "max 1000"]
    status = columns["status"].constraints.other
    assert status[0] == "one of " + ", ".join(orders.enum("status"))
    assert status[1] == "subset revenue: " + ", ".join(orders.enum("status", "revenue"))
