"""End to end: generated drops → raw Delta → dbt staging → marts, checked against pandas."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from deltalake import DeltaTable

from assets_project.defs.dbt.assets import shop_dbt_models
from assets_project.defs.resources import LakeResource
from assets_project.demo.generate import generate
from assets_project.lib.mart_contracts import load_mart_contracts
from assets_project.lib.mart_suite import rules_of
from tests.e2e.pipeline import (
    FILES_ONLY,
    RAW_ASSETS,
    lake_in,
    materialize_all,
    pipeline_resources,
)
from tests.e2e.reference import build_reference, record_counts

pytestmark = pytest.mark.slow

MARTS = ("dim_users", "dim_products", "fct_orders", "fct_user_daily_activity", "fct_daily_revenue")


def _marts(lake: LakeResource) -> dict[str, pd.DataFrame]:
    with duckdb.connect(lake.warehouse_path, read_only=True) as connection:
        return {
            name: connection.sql(f"select * from main.{name}")
            .df()
            .sort_values(list(connection.sql(f"select * from main.{name}").columns))
            .reset_index(drop=True)
            for name in MARTS
        }


def _money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Generate drops, keep a pristine copy, and run the pipeline in two waves of files."""
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    pristine = root / "pristine"
    generate(pristine, size=4000, seed=7, files=2)
    lake = lake_in(data)
    landing = data / "landing"
    instance = dg.DagsterInstance.ephemeral()
    # Wave 1: the first file of every source. Wave 2: the rest, with the late events, so
    # that the incremental staging model runs on late data.
    for folder in (p for p in pristine.iterdir() if p.is_dir()):
        (landing / folder.name).mkdir(parents=True)
        shutil.copy2(sorted(folder.iterdir())[0], landing / folder.name)
    first = materialize_all(lake, instance)
    for folder in (p for p in pristine.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir())[1:]:
            shutil.copy2(path, landing / folder.name)
    second = materialize_all(lake, instance)
    return {
        "lake": lake,
        "pristine": pristine,
        "instance": instance,
        "runs": (first, second),
        "marts": _marts(lake),
    }


def test_every_file_is_archived_and_rows_are_conserved(pipeline: dict[str, object]) -> None:
    lake: LakeResource = pipeline["lake"]  # type: ignore[assignment]
    expected = record_counts(pipeline["pristine"])  # type: ignore[arg-type]
    archived = {
        f"{p.parent.name}/{p.name}"
        for p in (Path(lake.data_dir) / "archive").rglob("*")
        if p.is_file()
    }
    assert archived == set(expected)
    for source in ("users", "products", "orders", "user_events"):
        raw = DeltaTable(lake.layout.raw_uri(source)).to_pandas(columns=["_source"])
        dlq = DeltaTable(lake.layout.dlq_uri(source)).to_pandas(columns=["_source"])
        counts = raw["_source"].value_counts().add(dlq["_source"].value_counts(), fill_value=0)
        got = {name: int(n) for name, n in counts.items()}
        assert got == {f: n for f, n in expected.items() if f.startswith(f"{source}/")}
        assert len(dlq) > 0, f"the generator injects defects into {source}"


def test_dim_users_matches_reference(pipeline: dict[str, object]) -> None:
    reference = build_reference(pipeline["pristine"])  # type: ignore[arg-type]
    dim = pipeline["marts"]["dim_users"]  # type: ignore[index]
    expected = reference.dim_users.sort_values("user_id").reset_index(drop=True)
    got = dim.sort_values("user_id").reset_index(drop=True)
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    for column in ("email", "user_tier", "geographic_region"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert [str(d) for d in got["signup_date"].dt.date] == [str(d) for d in expected["signup_date"]]
    assert got["updated_at"].tolist() == expected["updated_at"].tolist()


def test_daily_revenue_matches_reference(pipeline: dict[str, object]) -> None:
    reference = build_reference(pipeline["pristine"])  # type: ignore[arg-type]
    got = pipeline["marts"]["fct_daily_revenue"]  # type: ignore[index]
    expected = reference.fct_daily_revenue
    as_rows = lambda frame: sorted(  # noqa: E731
        (
            str(pd.Timestamp(r.revenue_date).date()),
            r.geographic_region,
            int(r.order_count),
            int(r.units_sold),
            _money(r.revenue),
        )
        for r in frame.itertuples()
    )
    assert as_rows(got) == as_rows(expected)
    assert sum(_money(v) for v in got["revenue"]) > 0


def test_user_daily_activity_matches_reference(pipeline: dict[str, object]) -> None:
    reference = build_reference(pipeline["pristine"])  # type: ignore[arg-type]
    got = pipeline["marts"]["fct_user_daily_activity"]  # type: ignore[index]
    expected = reference.fct_user_daily_activity
    as_rows = lambda frame: sorted(  # noqa: E731
        (
            int(r.user_id),
            str(pd.Timestamp(r.activity_date).date()),
            int(r.total_events),
            int(r.distinct_event_types),
            int(r.purchase_count),
            _money(r.total_revenue),
            r.user_tier,
            r.geographic_region,
            int(r.days_since_signup),
        )
        for r in frame.itertuples()
    )
    assert as_rows(got) == as_rows(expected)
    assert any(r.purchase_count for r in got.itertuples())


def test_materializing_again_changes_no_mart_row(pipeline: dict[str, object]) -> None:
    lake: LakeResource = pipeline["lake"]  # type: ignore[assignment]
    result = dg.materialize(
        [*RAW_ASSETS, shop_dbt_models],
        resources=pipeline_resources(lake),
        instance=pipeline["instance"],  # type: ignore[arg-type]
        run_config=FILES_ONLY,
    )
    assert result.success
    rebuilt = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert set(MARTS) <= rebuilt
    after = _marts(lake)
    for name in MARTS:
        pd.testing.assert_frame_equal(after[name], pipeline["marts"][name])  # type: ignore[index]


def test_forced_reingest_of_the_same_file_adds_no_rows(pipeline: dict[str, object]) -> None:
    lake: LakeResource = pipeline["lake"]  # type: ignore[assignment]
    archived = sorted((Path(lake.data_dir) / "archive" / "user_events").iterdir())[0]
    before = DeltaTable(lake.layout.raw_uri("user_events")).to_pyarrow_table().num_rows
    shutil.copy(archived, Path(lake.data_dir) / "landing" / "user_events" / "replayed.jsonl")
    result = dg.materialize(
        [a for a in RAW_ASSETS if a.key == dg.AssetKey(["raw", "user_events"])],
        resources=pipeline_resources(lake),
        instance=pipeline["instance"],  # type: ignore[arg-type]
        run_config=FILES_ONLY,
    )
    (materialization,) = result.asset_materializations_for_node("raw__user_events")
    assert materialization.metadata["files_already_ingested"].value == [
        "user_events/replayed.jsonl"
    ]
    assert DeltaTable(lake.layout.raw_uri("user_events")).to_pyarrow_table().num_rows == before


def test_dbt_materializations_carry_row_counts_and_checks_pass(pipeline: dict[str, object]) -> None:
    _, second = pipeline["runs"]  # type: ignore[misc]
    events = {e.asset_key.to_user_string(): e for e in second.get_asset_materialization_events()}
    rows = events["fct_daily_revenue"].materialization.metadata["dagster/row_count"].value
    assert rows == len(pipeline["marts"]["fct_daily_revenue"])  # type: ignore[index]
    evaluations = second.get_asset_check_evaluations()
    assert len(evaluations) > 50
    failed = [e.check_name for e in evaluations if not e.passed]
    assert failed == []
    # Every rule of every mart contract was judged, once (the quality suites).
    suites = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    for contract in load_mart_contracts().values():
        for rule in rules_of(contract):
            assert (contract.name, rule.name) in suites
