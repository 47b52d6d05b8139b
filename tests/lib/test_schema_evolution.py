"""Schema evolution: new columns flow in, incompatible changes quarantine the file."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout
from assets_project.lib.readers import UnreadableFileError

HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at"


def _ingest(layout: LakeLayout, name: str, text: str):
    path = layout.landing_dir / "users" / name
    path.write_text(text, encoding="utf-8")
    return ingest_file(path, load_contract("users"), layout, source=f"users/{name}")


def test_new_nullable_column_is_merged_into_the_table(layout: LakeLayout) -> None:
    _ingest(layout, "a.csv", f"{HEADER}\n1,a@b.co,2026-01-01,free,europe,2026-01-02\n")
    result = _ingest(
        layout,
        "b.csv",
        f"{HEADER},referral_code\n2,c@d.co,2026-01-01,free,europe,2026-01-02,SPRING\n",
    )
    assert result.new_columns == ("referral_code",)
    later = _ingest(layout, "c.csv", f"{HEADER}\n3,e@f.co,2026-01-01,free,europe,2026-01-02\n")
    assert later.rows_written == 1 and later.new_columns == ()
    table = DeltaTable(layout.raw_uri("users")).to_pyarrow_table()
    assert table.schema.field("referral_code").type == pa.string()
    codes = dict(zip(table["user_id"].to_pylist(), table["referral_code"].to_pylist(), strict=True))
    assert codes == {1: None, 2: "SPRING", 3: None}


def test_column_names_that_cannot_be_identifiers_are_ignored_not_lost(layout: LakeLayout) -> None:
    result = _ingest(
        layout,
        "odd.csv",
        f'{HEADER},"Weird Name"\n1,a@b.co,2026-01-01,free,europe,2026-01-02,x\n',
    )
    assert result.rows_written == 1
    assert result.ignored_columns == ("Weird Name",)
    assert "Weird Name" not in DeltaTable(layout.raw_uri("users")).to_pyarrow_table().column_names


def test_parquet_with_a_changed_type_is_refused_with_one_reason(layout: LakeLayout) -> None:
    path = layout.landing_dir / "users" / "typed.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": [1],
                "email": ["a@b.co"],
                "signup_date": [dt.date(2026, 1, 1)],
                "user_tier": ["free"],
                "geographic_region": ["europe"],
                "updated_at": pa.array([True]),  # a boolean where a timestamp belongs
            }
        ),
        path,
    )
    with pytest.raises(UnreadableFileError, match=r"column type changed: updated_at is bool"):
        ingest_file(path, load_contract("users"), layout, source="users/typed.parquet")


def test_parquet_with_native_types_is_ingested(layout: LakeLayout) -> None:
    path = layout.landing_dir / "users" / "native.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2], pa.int32()),
                "email": ["a@b.co", "not-an-email"],
                "signup_date": [dt.date(2026, 1, 1)] * 2,
                "user_tier": ["free", "free"],
                "geographic_region": ["europe", "europe"],
                "updated_at": [dt.datetime(2026, 1, 2, 3, 4, 5)] * 2,
            }
        ),
        path,
    )
    result = ingest_file(path, load_contract("users"), layout, source="users/native.parquet")
    assert (result.rows_written, result.rows_rejected) == (1, 1)
    row = DeltaTable(layout.raw_uri("users")).to_pyarrow_table().to_pylist()[0]
    assert row["updated_at"] == dt.datetime(2026, 1, 2, 3, 4, 5)
