"""The lake on S3 (moto's server on 127.0.0.1): the same code as on local disk."""

from __future__ import annotations

import pytest

from assets_project.lib.contracts import load_contract
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout, delta_table, open_table, storage_options
from tests.services.s3 import MotoS3

HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at\n"
ROWS = (
    "1,a@b.co,2026-01-01,free,europe,2026-01-02 10:00:00\n"
    "2,bad-email,2026-01-01,gold,europe,2026-01-02 10:00:00\n"
)


def test_local_paths_need_no_storage_options() -> None:
    assert storage_options("/data/lake/raw/users") is None


def test_s3_commits_by_conditional_put_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_S3_LOCKING_PROVIDER", "AWS_CONDITIONAL_PUT", "AWS_S3_ALLOW_UNSAFE_RENAME"):
        monkeypatch.delenv(name, raising=False)
    assert storage_options("s3://bucket/lake/raw/users") == {"conditional_put": "etag"}
    monkeypatch.setenv("AWS_S3_LOCKING_PROVIDER", "dynamodb")
    assert storage_options("s3://bucket/lake/raw/users") == {}


def test_a_file_lands_once_in_the_s3_lake(s3: MotoS3, s3_layout: LakeLayout) -> None:
    contract = load_contract("users")
    path = s3_layout.landing_dir / "users" / "u.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    first = ingest_file(path, contract, s3_layout, source="users/u.csv", batch_id="b1")
    again = ingest_file(path, contract, s3_layout, source="users/u.csv", batch_id="b2")
    assert (first.rows_written, first.rows_rejected) == (1, 1)
    assert again.already_ingested
    raw = delta_table(s3_layout.raw_uri("users")).to_pyarrow_table().to_pylist()
    assert [r["user_id"] for r in raw] == [1]
    assert open_table(s3_layout.dlq_uri("users")) is not None
    bucket = s3_layout.lake_uri.removeprefix("s3://").split("/")[0]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("lake/raw/users/_delta_log/") for k in keys)
    assert not (s3_layout.data_dir / "lake").exists()
