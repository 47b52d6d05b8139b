"""Tests of the demo data generator. Defect injectors: every kind present, at modest rates, never winning a merge."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assets_project.demo.generate import (
    BASE_S,
    END_S,
    SOURCE_DEFECTS,
    SOURCES,
    GenerationReport,
    generate,
)
from assets_project.lib.contracts import load_contract
from tests.demo.generate.strict import CSV_TS, EVENT_TS, EXPECTED_KINDS, FILES, Source, parse_time


def test_every_defect_kind_is_injected(demo: GenerationReport) -> None:
    for source in SOURCES:
        defects = demo.defects(source)
        assert set(defects) == EXPECTED_KINDS[source] == set(SOURCE_DEFECTS[source])
        assert all(count >= 1 for count in defects.values()), (source, defects)


def test_invalid_rows_never_win_a_merge(sources: dict[str, Source]) -> None:
    """Invalid versions of existing records are older than every valid version of them."""
    for name, key in (("users", "user_id"), ("products", "product_id"), ("orders", "order_id")):
        source = sources[name]
        header = [c.name for c in load_contract(name).input_columns]
        first_valid: dict[str, datetime] = {}
        for row in source.valid():
            stamp = datetime.strptime(row.record["updated_at"], CSV_TS)
            first_valid[row.record[key]] = min(stamp, first_valid.get(row.record[key], stamp))
        checked = 0
        for rows in source.rows:
            for row in rows:
                if row.valid:
                    continue
                values = dict(zip(header, next(csv.reader([row.line])), strict=True))
                stamp = parse_time(values["updated_at"], CSV_TS)
                if values[key] in first_valid and stamp is not None:
                    assert stamp < first_valid[values[key]], row.line
                    checked += 1
        assert checked > 0, name


def test_late_events_are_in_the_last_file(
    demo: GenerationReport, sources: dict[str, Source]
) -> None:
    def slice_start(index: int) -> datetime:
        seconds = BASE_S + index * (END_S - BASE_S) // FILES
        return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)

    earlier_lines: set[str] = set()
    for index, rows in enumerate(sources["user_events"].rows):
        stamped = {  # copies of lines from earlier files are duplicates, not late events
            row.line: datetime.strptime(row.record["event_timestamp"], EVENT_TS)
            for row in rows
            if row.valid and row.line not in earlier_lines
        }
        earlier_lines.update(row.line for row in rows)
        start = slice_start(index)
        late = {line: stamp for line, stamp in stamped.items() if stamp < start}
        if index < FILES - 1:
            assert late == {}, f"late events in file {index + 1}"
            continue
        assert len(late) == demo.defects("user_events")["late_event"] >= 1
        earliest_regular = min(stamp for stamp in stamped.values() if stamp >= start)
        for stamp in late.values():
            assert earliest_regular - stamp >= timedelta(days=2)
            assert timedelta(days=2) <= start - stamp <= timedelta(days=10)


def test_defect_rates_are_modest(tmp_path: Path) -> None:
    report = generate(tmp_path / "medium", 200_000, 11, 3)
    for source in SOURCES:
        stats = report.manifest["sources"][source]
        ratio = (stats["rows"] - stats["clean_rows"]) / stats["clean_rows"]
        assert 0.01 <= ratio <= 0.03, (source, ratio)
        assert all(n >= 1 for n in stats["defects"].values()), source
