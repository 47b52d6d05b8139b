"""Bad files dropped into a real landing folder, through the sensor and the raw asset.

Each case runs what the sensor requests the way the daemon would (its run config and tags),
then checks: a file that cannot be taken is in quarantine byte for byte with a ``.reason``
that names it, a file with bad rows is archived with every record in raw or dead-letter, a
file that must not be read is not, and a good file dropped afterwards still flows (the sensor
requests it on its next tick, with the cursor it returned, and the run ingests it).

Whole-file problems are quarantined: no header, a header that does not fit the contract
(semicolons, duplicates, a required column missing, not UTF-8, a name the lake reserves for its
own columns), an empty JSON-lines file, a Parquet file that is truncated, has a nested column,
or stores a contract column in a physical type that cannot hold it (``updated_at`` as int64).
Everything else is decided per row.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from assets_project.defs.ingestion.files import (
    FileDropConfig,
    build_file_drop_asset,
    build_file_drop_sensor,
)
from assets_project.defs.ingestion.raw import INGESTION_RETRY_POLICY
from assets_project.defs.resources import LakeResource
from assets_project.lib.contracts import Contract, load_contract

USERS = load_contract("users")
PRODUCTS = load_contract("products")
EVENTS = load_contract("user_events")
USERS_HEADER = "user_id,email,signup_date,user_tier,geographic_region,updated_at"
PRODUCTS_HEADER = "product_id,name,category,unit_price,updated_at"


def _user(n: int) -> str:
    return f"{n},u{n}@b.co,2026-01-01,free,europe,2026-01-02 10:00:00"


def _parquet(**columns: object) -> bytes:
    products = {
        "product_id": [1],
        "name": ["Pen"],
        "category": ["books"],
        "unit_price": [1.5],
        "updated_at": [dt.datetime(2026, 1, 2, 10)],
    }
    sink = io.BytesIO()
    pq.write_table(pa.table(products | columns), sink)
    return sink.getvalue()


def _settled(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    old = time.time() - 3600  # past the settle time, and the grace an empty file waits
    os.utime(path, (old, old))
    return path


def _landing(lake: LakeResource, contract: Contract) -> Path:
    return Path(lake.data_dir) / "landing" / contract.name


def _tick(contract: Contract, lake: LakeResource, cursor: str | None) -> dg.SensorResult:
    sensor = build_file_drop_sensor(contract)
    with dg.build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
        return sensor(context)


def _launch(
    contract: Contract,
    lake: LakeResource,
    request: dg.RunRequest | None = None,
    retry_policy: dg.RetryPolicy | None = INGESTION_RETRY_POLICY,
) -> dg.ExecuteInProcessResult:
    """Run the raw asset as the daemon runs a sensor's request (or unconfigured: every file)."""
    return dg.materialize(
        [build_file_drop_asset(contract, retry_policy=retry_policy)],
        resources={"lake": lake},
        run_config=request.run_config if request else None,
        tags=request.tags if request else None,
    )


def _metadata(result: dg.ExecuteInProcessResult, contract: Contract) -> dict:
    (materialization,) = result.asset_materializations_for_node(f"raw__{contract.name}")
    return {k: v.value for k, v in materialization.metadata.items()}


def _rows(uri: str, source_file: str) -> list[dict]:
    if not Path(uri).exists():
        return []
    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    return sorted((r for r in rows if r["_source"] == source_file), key=lambda r: r["_source_line"])


def _drop_and_run(
    contract: Contract, lake: LakeResource, name: str, data: bytes, cursor: str | None = None
) -> tuple[dg.ExecuteInProcessResult, str | None]:
    """Drop a settled file, tick the sensor, run its one request; the new cursor."""
    _settled(_landing(lake, contract) / name, data)
    tick = _tick(contract, lake, cursor)
    (request,) = tick.run_requests
    assert request.run_config["ops"][f"raw__{contract.name}"]["config"] == {
        "path": f"{contract.name}/{name}"
    }
    assert request.tags == {"source_file": f"{contract.name}/{name}"}
    result = _launch(contract, lake, request)
    assert result.success
    return result, tick.cursor


def _good_file_still_flows(contract: Contract, lake: LakeResource, cursor: str | None) -> None:
    """After a bad drop, the sensor's next tick requests a good file and the run ingests it."""
    name, data = "good.csv", f"{USERS_HEADER}\n{_user(1)}\n{_user(2)}\n".encode()
    if contract is PRODUCTS:
        name, data = "good.parquet", _parquet(product_id=[7])
    elif contract is EVENTS:
        name = "good.jsonl"
        data = (
            b'{"event_id":"0a1b2c3d-0000-4000-8000-000000000001","user_id":1,'
            b'"event_type":"click","event_timestamp":"2026-01-05T10:11:12Z"}\n'
        )
    result, cursor = _drop_and_run(contract, lake, name, data, cursor)
    meta = _metadata(result, contract)
    assert meta["files"] == [f"{contract.name}/{name}"]
    assert meta["rows_written"] == meta["rows_in"] > 0
    assert len(_rows(lake.layout.raw_uri(contract.name), f"{contract.name}/{name}")) > 0
    assert (Path(lake.data_dir) / "archive" / contract.name / name).read_bytes() == data
    assert not any(_landing(lake, contract).iterdir())
    assert _tick(contract, lake, cursor).run_requests == []


WHOLE_FILE_PROBLEMS = [
    pytest.param(USERS, "empty.csv", b"", "file is empty: no header line", id="empty"),
    pytest.param(
        USERS,
        "semi.csv",
        f"{USERS_HEADER.replace(',', ';')}\n{_user(1).replace(',', ';')}\n".encode(),
        "required column(s) missing from the header: user_id, email, signup_date, "
        "user_tier, geographic_region, updated_at (header: user_id;email;",
        id="semicolon-delimited",
    ),
    pytest.param(
        USERS,
        "dup.csv",
        f"{USERS_HEADER},email\n{_user(1)},x@y.co\n".encode(),
        "duplicate column names in header: email",
        id="duplicate-header",
    ),
    pytest.param(
        USERS,
        "missing.csv",
        b"user_id,email\n1,a@b.co\n",
        "required column(s) missing from the header: signup_date, user_tier",
        id="missing-required-column",
    ),
    pytest.param(
        USERS,
        "latin1.csv",
        b"user_id,em\xe9il\n1,a@b.co\n",
        "header is not valid UTF-8: byte 0xE9 at offset 10 of the file",
        id="header-not-utf8",
    ),
    pytest.param(EVENTS, "empty.jsonl", b"", "file is empty: no lines", id="empty-jsonl"),
    pytest.param(
        PRODUCTS,
        "cut.parquet",
        _parquet()[:-100],
        "not a readable Parquet file",
        id="truncated-parquet",
    ),
    pytest.param(
        PRODUCTS,
        "epoch.parquet",
        _parquet(updated_at=pa.array([1_767_348_000_000_000], pa.int64())),
        "column type changed: updated_at is int64 in the file, the contract says timestamp",
        id="parquet-int-timestamp",
    ),
    pytest.param(
        PRODUCTS,
        "nested.parquet",
        _parquet(meta=[{"colour": "red"}]),
        "column meta of type struct<colour: string> cannot be read as text",
        id="parquet-nested-column",
    ),
    pytest.param(
        USERS,
        "clash.csv",
        f"{USERS_HEADER},_source_line\n{_user(1)},7\n".encode(),
        "column name(s) reserved for the lake's own columns: _source_line (rename the column)",
        id="reserved-csv-header",
    ),
    pytest.param(
        PRODUCTS,
        "clash.parquet",
        _parquet(__original_0=["x"]),
        "column name(s) reserved for the lake's own columns: __original_0 (rename the column)",
        id="reserved-parquet-column",
    ),
]


@pytest.mark.parametrize(("contract", "name", "data", "reason"), WHOLE_FILE_PROBLEMS)
def test_unreadable_file_is_quarantined_intact_and_the_next_file_flows(
    lake: LakeResource, contract: Contract, name: str, data: bytes, reason: str
) -> None:
    result, cursor = _drop_and_run(contract, lake, name, data)
    meta = _metadata(result, contract)
    assert (meta["files"], meta["files_quarantined"]) == ([], 1)

    quarantine = Path(lake.data_dir) / "quarantine" / contract.name
    assert (quarantine / name).read_bytes() == data
    written = (quarantine / f"{name}.reason").read_text(encoding="utf-8")
    assert written.startswith(f"{contract.name}/{name}: ")
    assert reason in written
    assert not any(_landing(lake, contract).iterdir())
    assert _rows(lake.layout.raw_uri(contract.name), f"{contract.name}/{name}") == []
    assert _rows(lake.layout.dlq_uri(contract.name), f"{contract.name}/{name}") == []

    _good_file_still_flows(contract, lake, cursor)


def test_file_with_bad_rows_is_archived_with_every_record_accounted_for(
    lake: LakeResource,
) -> None:
    """An Excel-style export (BOM, CRLF) with a quoted newline, a row that is not UTF-8 and
    a row with a field too many, under a name with spaces and non-ASCII letters."""
    name = "products 2026 \u2013 \u00fc.csv"
    data = b"\xef\xbb\xbf" + b"\r\n".join(
        [
            PRODUCTS_HEADER.encode(),
            b'1,"Desk lamp\r\nlarge",home,19.99,2026-01-02 10:00:00',
            b"2,B\xe4r,toys,5.00,2026-01-02 10:00:00",
            b"3,Pen,books,1.00,2026-01-02 10:00:00,surplus",
            b"4,Mug,home,abc,2026-01-02 10:00:00",
            b"5,Cup,home,2.50,2026-01-02 10:00:00",
            b"",
        ]
    )
    result, cursor = _drop_and_run(PRODUCTS, lake, name, data)
    meta = _metadata(result, PRODUCTS)
    assert (meta["rows_in"], meta["rows_written"], meta["rows_rejected"]) == (5, 2, 3)
    assert (Path(lake.data_dir) / "archive" / "products" / name).read_bytes() == data

    source_file = f"products/{name}"
    raw = _rows(lake.layout.raw_uri("products"), source_file)
    dlq = _rows(lake.layout.dlq_uri("products"), source_file)
    assert len(raw) + len(dlq) == 5
    assert [(r["_source_line"], r["product_id"], r["name"]) for r in raw] == [
        (1, 1, "Desk lamp\r\nlarge"),
        (5, 5, "Cup"),
    ]
    assert [(r["_source_line"], r["reason"]) for r in dlq] == [
        (2, "name: not valid UTF-8 (byte 0xE4 at offset 1)"),
        (3, "row has 6 fields, header has 5"),
        (4, "unit_price: not a valid decimal(12,2) (got 'abc')"),
    ]
    assert dlq[1]["reasons"][0]["column"] is None  # the row as a whole: no field to name
    assert dlq[2]["reasons"][0]["column"] == "unit_price"

    _good_file_still_flows(PRODUCTS, lake, cursor)


def test_symlink_and_dotdot_outside_landing_are_never_read(lake: LakeResource) -> None:
    """Refused runs fail; the policy's retries run without their back-off to keep this fast."""
    fast = dg.RetryPolicy(max_retries=3)
    landing = _landing(lake, USERS)
    secret = Path(lake.data_dir) / "secret.csv"
    _settled(secret, f"{USERS_HEADER}\n{_user(9)}\n".encode())
    before = (secret.read_bytes(), secret.stat().st_mtime_ns)
    (landing / "link.csv").symlink_to(secret)

    tick = _tick(USERS, lake, None)
    assert tick.run_requests == []
    assert "not read: link.csv resolves to" in str(tick.skip_reason)
    assert "outside" in str(tick.skip_reason)

    everything = _launch(USERS, lake)  # no path: every ready file, which is none
    assert everything.success
    assert _metadata(everything, USERS)["files"] == []
    for path in ("../secret.csv", "users/../../secret.csv", "users/link.csv"):
        refused = dg.materialize(
            [build_file_drop_asset(USERS, retry_policy=fast)],
            resources={"lake": lake},
            run_config=dg.RunConfig(ops={"raw__users": FileDropConfig(path=path)}),
            raise_on_error=False,
        )
        assert not refused.success
    assert (secret.read_bytes(), secret.stat().st_mtime_ns) == before
    assert (landing / "link.csv").is_symlink()
    assert DeltaTable(lake.layout.raw_uri("users")).to_pyarrow_table().num_rows == 0
    assert not (Path(lake.data_dir) / "quarantine").exists()

    (landing / "link.csv").unlink()
    _good_file_still_flows(USERS, lake, tick.cursor)


def test_file_still_being_written_is_not_picked_up_until_it_settles(
    lake: LakeResource,
) -> None:
    lake = LakeResource(
        data_dir=lake.data_dir,
        lake_uri=lake.lake_uri,
        warehouse_path=lake.warehouse_path,
        settle_seconds=30,
    )
    landing = _landing(lake, USERS)
    partial = f"{USERS_HEADER}\n{_user(1)}\n{_user(2)}"[:-12]  # cut mid-row
    with (landing / "growing.csv").open("w") as writer:
        writer.write(partial)
        writer.flush()
        _settled(landing / "upload.csv.part", partial.encode())  # an upload's temporary name
        tick = _tick(USERS, lake, None)
        assert tick.run_requests == []
        assert "growing.csv: modified" in str(tick.skip_reason)
        assert "still settling" in str(tick.skip_reason)
        assert "upload" not in str(tick.skip_reason)
        unconfigured = _launch(USERS, lake)
        assert _metadata(unconfigured, USERS)["files"] == []
        writer.write(f"{USERS_HEADER}\n{_user(1)}\n{_user(2)}\n"[len(partial) :])
    assert (landing / "growing.csv").exists() and (landing / "upload.csv.part").exists()
    assert DeltaTable(lake.layout.raw_uri("users")).to_pyarrow_table().num_rows == 0

    old = time.time() - 60
    os.utime(landing / "growing.csv", (old, old))
    tick = _tick(USERS, lake, tick.cursor)
    (request,) = tick.run_requests
    assert request.tags == {"source_file": "users/growing.csv"}
    result = _launch(USERS, lake, request)
    assert _metadata(result, USERS)["rows_written"] == 2
    raw = _rows(lake.layout.raw_uri("users"), "users/growing.csv")
    assert [r["user_id"] for r in raw] == [1, 2]
    assert [p.name for p in landing.iterdir()] == ["upload.csv.part"]
