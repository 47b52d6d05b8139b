"""The landing zone on S3 against moto's server: safe keys, the settle rule, the object's
identity while it is read, archive and quarantine as copies + conditional deletes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from assets_project.lib.landing import UnsafePathError
from assets_project.lib.landing_s3 import (
    ObjectChangedError,
    S3Landing,
    archive,
    check_unchanged,
    drop_of,
    fetch,
    quarantine,
    safe_name,
    scan_objects,
)
from tests.services.s3 import MotoS3

ROWS = b"user_id,email\n1,a@example.com\n"


def _store(s3: MotoS3) -> tuple[Any, S3Landing]:
    bucket = s3.create_bucket()
    return s3.client(), S3Landing.from_uris(f"s3://{bucket}/landing")


def _listing(client: Any, store: S3Landing, source: str) -> list[dict[str, Any]]:
    answer = client.list_objects_v2(Bucket=store.landing.bucket, Prefix=store.source_prefix(source))
    return list(answer.get("Contents", []))


def _scan(client: Any, store: S3Landing, source: str, now: float, settle: float = 5.0) -> Any:
    return scan_objects(
        store.landing.bucket,
        store.source_prefix(source),
        _listing(client, store, source),
        settle,
        now,
    )


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    answer = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in answer.get("Contents", []))


@pytest.mark.parametrize(
    "key",
    [
        "landing/users/../orders/a.csv",
        "landing/users/./a.csv",
        "landing/users//a.csv",
        "/landing/users/a.csv",
        "landing/users/a\\b.csv",
        "landing/orders/a.csv",
        "landing/users/sub/a.csv",
    ],
)
def test_a_key_not_directly_under_the_prefix_is_refused(key: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_name("landing/users/", key)
    assert safe_name("landing/users/", "landing/users/a.csv") == "a.csv"


def test_a_run_config_cannot_name_an_object_outside_its_source(s3: MotoS3) -> None:
    _, store = _store(s3)
    assert store.key_of("users", "users/a.csv") == "landing/users/a.csv"
    for relative in ("users/../orders/a.csv", "orders/a.csv", "users/x/a.csv", "../a.csv"):
        with pytest.raises(UnsafePathError):
            store.key_of("users", relative)


def test_unsafe_keys_in_a_real_listing_are_reported_and_never_read(s3: MotoS3) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    for key in ("landing/users/a.csv", "landing/users/../orders/b.csv", "landing/users/./c.csv"):
        client.put_object(Bucket=bucket, Key=key, Body=ROWS)
    ready, notes = _scan(client, store, "users", time.time() + 60)
    assert [d.key for d in ready] == ["landing/users/a.csv"]
    assert len([n for n in notes if n.startswith("not read")]) == 2, notes


def test_an_object_is_ready_once_settled_or_at_once_with_a_marker(s3: MotoS3) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=ROWS)
    client.put_object(Bucket=bucket, Key="landing/users/.hidden.csv", Body=ROWS)
    client.put_object(Bucket=bucket, Key="landing/users/b.csv.part", Body=ROWS)
    now = time.time()
    ready, notes = _scan(client, store, "users", now, settle=30)
    assert ready == [] and any("still settling" in n for n in notes)
    client.put_object(Bucket=bucket, Key="landing/users/a.csv.done", Body=b"")
    ready, _ = _scan(client, store, "users", now, settle=30)
    assert [(d.relative, d.marker) for d in ready] == [("users/a.csv", "landing/users/a.csv.done")]
    ready, _ = _scan(client, store, "users", now + 60, settle=30)
    assert [d.relative for d in ready] == ["users/a.csv"]  # hidden and temporary names never


def test_a_rewritten_key_is_a_new_drop_and_the_old_version_is_not_read(
    s3: MotoS3, tmp_path: Path
) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=ROWS)
    drop = drop_of(client, bucket, "landing/users/a.csv", "users/a.csv")
    assert drop is not None
    spooled = fetch(client, drop, tmp_path)
    assert spooled.read_bytes() == ROWS and spooled.name == "a.csv"
    check_unchanged(client, drop)

    client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=ROWS + b"2,b@example.com\n")
    with pytest.raises(ObjectChangedError):
        check_unchanged(client, drop)  # what ingestion checks right before its commit
    with pytest.raises(ObjectChangedError):
        fetch(client, drop, tmp_path)
    again = drop_of(client, bucket, "landing/users/a.csv", "users/a.csv")
    assert again is not None and again.run_key != drop.run_key


def test_archive_moves_the_object_and_never_overwrites(s3: MotoS3) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    uris = []
    for body in (ROWS, ROWS + b"2,b@example.com\n"):
        client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=body)
        client.put_object(Bucket=bucket, Key="landing/users/a.csv.done", Body=b"")
        (drop,) = _scan(client, store, "users", time.time() + 60)[0]
        uris.append(archive(client, drop, store))
    assert uris == [f"s3://{bucket}/archive/users/a.csv", f"s3://{bucket}/archive/users/a.1.csv"]
    assert _keys(client, bucket, "landing/") == []
    assert _keys(client, bucket, "archive/") == [
        "archive/users/a.1.csv",
        "archive/users/a.1.csv.done",
        "archive/users/a.csv",
        "archive/users/a.csv.done",
    ]
    first = client.get_object(Bucket=bucket, Key="archive/users/a.csv")["Body"].read()
    assert first == ROWS


def test_quarantine_keeps_the_object_with_its_reason(s3: MotoS3) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    client.put_object(Bucket=bucket, Key="landing/users/bad.csv", Body=b"\xff\xfe")
    (drop,) = _scan(client, store, "users", time.time() + 60)[0]
    uri = quarantine(client, drop, store, "not UTF-8 text")
    assert uri == f"s3://{bucket}/quarantine/users/bad.csv"
    assert _keys(client, bucket, "landing/") == []
    reason = client.get_object(Bucket=bucket, Key="quarantine/users/bad.csv.reason")["Body"]
    assert reason.read() == b"not UTF-8 text\n"


def test_an_object_replaced_before_its_archive_stays_in_landing(s3: MotoS3) -> None:
    client, store = _store(s3)
    bucket = store.landing.bucket
    client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=ROWS)
    (drop,) = _scan(client, store, "users", time.time() + 60)[0]
    newer = ROWS + b"2,b@example.com\n"
    client.put_object(Bucket=bucket, Key="landing/users/a.csv", Body=newer)
    with pytest.raises(ObjectChangedError):
        archive(client, drop, store)
    kept = client.get_object(Bucket=bucket, Key="landing/users/a.csv")["Body"].read()
    assert kept == newer  # the new version is a new drop, read as such: nothing lost


def test_overlapping_prefixes_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        S3Landing.from_uris("s3://b/landing", archive="s3://b/landing/archive")
    with pytest.raises(ValueError, match="whole bucket"):
        S3Landing.from_uris("s3://b")
