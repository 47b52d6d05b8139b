"""Tests of the demo data generator. The world model: every record has a valid version, versions in file and time order."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from assets_project.demo.generate import Scale
from tests.demo.generate.strict import CSV_TS, NEXT_STATUS, SIZE, Source


def test_valid_rows_keep_referential_integrity(sources: dict[str, Source]) -> None:
    scale = Scale.for_size(SIZE)
    users = {int(row.record["user_id"]) for row in sources["users"].valid()}
    products = {int(row.record["product_id"]) for row in sources["products"].valid()}
    orders = {int(row.record["order_id"]) for row in sources["orders"].valid()}
    assert users == set(range(1, scale.users + 1))
    assert products == set(range(1, scale.products + 1))
    assert orders == set(range(1, scale.orders + 1))
    for row in sources["orders"].valid():
        assert int(row.record["user_id"]) in users
        assert int(row.record["product_id"]) in products
    events = sources["user_events"].valid()
    assert len({row.record["event_id"] for row in events}) == SIZE
    for row in events:
        assert row.record["user_id"] in users
        props = row.record["properties"]
        if row.record["event_type"] == "purchase":
            assert props["product_id"] in products
            assert re.search(r'"amount":\d+\.\d\d,', row.line)


def test_later_files_carry_newer_versions(sources: dict[str, Source]) -> None:
    for name, key in (("users", "user_id"), ("products", "product_id"), ("orders", "order_id")):
        versions: dict[str, list[tuple[int, datetime, dict[str, Any]]]] = defaultdict(list)
        seen: set[str] = set()
        for row in sources[name].valid():
            if row.line not in seen:  # skip duplicates
                seen.add(row.line)
                stamp = datetime.strptime(row.record["updated_at"], CSV_TS)
                versions[row.record[key]].append((row.file, stamp, row.record))
        spread = 0
        for history in versions.values():
            history.sort(key=lambda v: (v[0], v[1]))
            stamps = [stamp for _, stamp, _ in history]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
            spread += history[0][0] != history[-1][0]
            if name == "orders":
                statuses = [record["status"] for _, _, record in history]
                assert statuses[0] == "pending"
                for before, after in itertools.pairwise(statuses):
                    assert after in NEXT_STATUS[before], statuses
                assert all(r["created_at"] == history[0][2]["updated_at"] for *_, r in history)
        assert spread > 0, f"no {name} record has versions in two files"
