"""Late, shrunken and null-spiked batches: deterministic, and bad in exactly the asked way."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assets_project.demo.generate import SOURCES, GenerationReport, Variants, generate
from tests.demo.generate.strict import FILES, SEED, SIZE, all_bytes

ENDS_AT = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)


def _data_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[1:] if path.suffix == ".csv" else lines


def _last(report: GenerationReport, source: str) -> Path:
    return report.out / sorted(report.manifest["sources"][source]["files"])[-1]


def test_no_variants_is_the_default_output(demo: GenerationReport, tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", SIZE, SEED, FILES, variants=Variants())
    assert all_bytes(plain.out) == all_bytes(demo.out)


def test_variants_are_deterministic(tmp_path: Path) -> None:
    variants = Variants(ends_at=ENDS_AT, shrink=0.1, null_spike=0.3)
    first = generate(tmp_path / "a", SIZE, SEED, FILES, variants=variants)
    second = generate(tmp_path / "b", SIZE, SEED, FILES, variants=variants)
    assert all_bytes(first.out) == all_bytes(second.out)
    assert first.manifest["variants"]["ends_at"] == "2026-12-03T09:00:00+00:00"


def test_late_batch_ends_at_the_given_time(demo: GenerationReport, tmp_path: Path) -> None:
    late = generate(tmp_path / "late", SIZE, SEED, FILES, variants=Variants(ends_at=ENDS_AT))
    offset = ENDS_AT - datetime(2026, 2, 1, tzinfo=UTC)

    before, after = _event_times(demo), _event_times(late)
    assert len(before) == len(after) and before
    assert all(b + offset == a for b, a in zip(before, after, strict=True))
    assert max(after).replace(tzinfo=UTC) <= ENDS_AT
    for path in sorted((late.out / "orders").glob("*.csv")):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            if row["updated_at"].startswith("2026-1"):
                assert row["updated_at"] <= ENDS_AT.strftime("%Y-%m-%d %H:%M:%S")


def test_shrunken_batch_keeps_a_share_of_the_last_file(
    demo: GenerationReport, tmp_path: Path
) -> None:
    small = generate(tmp_path / "small", SIZE, SEED, FILES, variants=Variants(shrink=0.1))
    for source in SOURCES:
        full = _data_lines(_last(demo, source))
        kept = _data_lines(_last(small, source))
        assert kept == full[: len(kept)]
        assert 1 <= len(kept) <= len(full) // 10 + 1
        first = sorted(demo.manifest["sources"][source]["files"])[0]
        assert (small.out / first).read_bytes() == (demo.out / first).read_bytes()


def test_null_spiked_batch_blanks_a_share_of_the_last_file(
    demo: GenerationReport, tmp_path: Path
) -> None:
    spiked = generate(tmp_path / "spiked", SIZE, SEED, FILES, variants=Variants(null_spike=0.5))
    users = list(csv.DictReader(_last(spiked, "users").open(encoding="utf-8")))
    blank = sum(1 for row in users if row["email"] == "")
    assert blank >= len(users) // 2
    events = [json.loads(x) for x in _data_lines(_last(spiked, "user_events")) if _is_object(x)]
    before = [json.loads(x) for x in _data_lines(_last(demo, "user_events")) if _is_object(x)]
    nulls = sum(1 for e in events if e.get("properties") is None)
    assert nulls >= len(events) // 2 - 1 > sum(1 for e in before if e.get("properties") is None)


def _event_times(report: GenerationReport) -> list[datetime]:
    """The valid event times of every events file, in file order."""
    times = []
    for path in sorted((report.out / "user_events").glob("*.jsonl")):
        for line in _data_lines(path):
            value = json.loads(line).get("event_timestamp") if _is_object(line) else None
            if isinstance(value, str) and value.endswith("Z"):
                try:
                    times.append(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
                except ValueError:
                    continue  # a wrong_type defect: left as it was
    return times


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


@pytest.mark.parametrize("share", [0.0, 1.5, -0.1])
def test_rejects_shares_outside_zero_to_one(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        Variants(shrink=share)


def test_cli_late_minutes(tmp_path: Path) -> None:
    from assets_project.demo.__main__ import main

    out = tmp_path / "cli"
    code = main(
        ["generate", "--size", "300", "--seed", "1", "--out", str(out), "--late-minutes", "90"]
    )
    assert code == 0
    manifest = json.loads((out / "_manifest.json").read_text())
    ends_at = datetime.fromisoformat(manifest["variants"]["ends_at"])
    assert datetime.now(UTC) - ends_at > timedelta(minutes=89)
