"""What concurrent ingestion of many files into one raw table must leave behind, and the demo
files it runs on (shared by tests/lib/test_concurrent_ingest.py and
tests/e2e/test_concurrent_workers.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assets_project.demo.generate.run import generate
from assets_project.lib.lake import LakeLayout, delta_table

SOURCE = "user_events"


def demo_event_files(landing: Path, files: int, size: int = 4000, seed: int = 17) -> list[Path]:
    """``files`` JSON-lines drops of user events (with the generator's defects) in ``landing``;
    the other sources' drops are generated too but removed."""
    generate(landing, size=size, seed=seed, files=files)
    for other in landing.iterdir():
        if other.is_dir() and other.name != SOURCE:
            for path in other.iterdir():
                path.unlink()
        elif other.is_file():
            other.unlink()  # the manifest
    return sorted((landing / SOURCE).glob("*.jsonl"))


def file_lines(path: Path) -> int:
    """Records in a JSON-lines file by its own count: its non-blank lines (malformed included)."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


@dataclass(frozen=True)
class Landed:
    """Where each line of each file ended up."""

    raw: Counter[tuple[str, int]]
    """(``_source``, ``_source_line``) -> rows in the raw table."""
    dlq: Counter[tuple[str, int]]
    """(``_source``, ``_source_line``) -> rows in the dead-letter table."""

    @classmethod
    def read(cls, layout: LakeLayout) -> Landed:
        def lines(uri: str) -> Counter[tuple[str, int]]:
            table = delta_table(uri).to_pyarrow_table(columns=["_source", "_source_line"])
            return Counter(
                zip(table["_source"].to_pylist(), table["_source_line"].to_pylist(), strict=True)
            )

        return cls(raw=lines(layout.raw_uri(SOURCE)), dlq=lines(layout.dlq_uri(SOURCE)))

    def assert_each_line_once(self, lines_per_file: dict[str, int]) -> None:
        """Every line of every file is in exactly one of the two tables, exactly once, and
        nothing else is (``lines_per_file``: ``_source`` name -> the file's own line count)."""
        both = self.raw + self.dlq
        doubled = {k: n for k, n in both.items() if n > 1}
        assert not doubled, f"records landed more than once: {sorted(doubled)[:5]}"
        expected = {(name, i) for name, n in lines_per_file.items() for i in range(1, n + 1)}
        assert set(both) == expected, (
            f"lost: {sorted(expected - set(both))[:5]}, unexpected: {sorted(set(both) - expected)[:5]}"
        )
        for name in lines_per_file:
            assert sum(1 for s, _ in self.raw if s == name) > 0, f"no valid record of {name}"


def write_commits(uri: str) -> list[dict[str, Any]]:
    """The WRITE commits in a Delta table's history, oldest first (commitInfo as delta-rs
    returns it: the custom metadata, ``readVersion`` and ``version`` included)."""
    history = delta_table(uri).history()
    return sorted((c for c in history if c.get("operation") == "WRITE"), key=lambda c: c["version"])


def assert_one_commit_per_file(uri: str, sources: set[str]) -> list[dict[str, Any]]:
    """The table has exactly one WRITE commit per file (by its ``source_file`` commit metadata),
    and no other; returns the commits."""
    commits = write_commits(uri)
    per_file = Counter(c.get("source_file") for c in commits)
    assert per_file == Counter(dict.fromkeys(sources, 1)), per_file
    return commits


def retries(commits: list[dict[str, Any]]) -> int:
    """Commit retries delta-rs made and recorded (``operationMetrics.num_retries``): a writer
    that lost the race for the next version, found no logical conflict with the winner (an
    append of other files under another app transaction) and committed on top of it."""
    return sum(int(c.get("operationMetrics", {}).get("num_retries", 0)) for c in commits)
