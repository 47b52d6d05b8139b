"""Tests of the demo data generator. ``generate``: layout, determinism (byte-identical for a seed), manifest, parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets_project.demo.generate import (
    INVALID_KINDS,
    SOURCES,
    GenerationReport,
    generate,
    vocabulary,
)
from tests.demo.generate.strict import FILES, SEED, SIZE, Source, all_bytes


def test_layout_and_formats(demo: GenerationReport) -> None:
    expected = {
        "_manifest.json",
        *(
            f"{s}/{s}_{i:04d}.{'jsonl' if s == 'user_events' else 'csv'}"
            for s in SOURCES
            for i in (1, 2)
        ),
    }
    assert set(all_bytes(demo.out)) == expected
    assert {str(p.relative_to(demo.out)) for p in demo.paths} == expected
    for path in demo.paths:
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in data
        assert data.endswith(b"\n")
        data.decode("utf-8")
    header = (demo.out / "orders" / "orders_0001.csv").read_text().splitlines()[0]
    assert header == "order_id,user_id,product_id,quantity,unit_price,status,created_at,updated_at"


def test_same_seed_gives_identical_bytes(demo: GenerationReport, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", SIZE, SEED, FILES)
    assert all_bytes(again.out) == all_bytes(demo.out)
    assert again.manifest == demo.manifest


def test_other_seed_gives_other_data(demo: GenerationReport, tmp_path: Path) -> None:
    other = all_bytes(generate(tmp_path / "other", SIZE, SEED + 1, FILES).out)
    mine = all_bytes(demo.out)
    for name in mine:
        if name != "_manifest.json":
            assert other[name] != mine[name], name


def test_manifest_is_sorted_and_consistent(demo: GenerationReport) -> None:
    text = (demo.out / "_manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert manifest == demo.manifest
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert manifest["parameters"] == {
        "base_date": "2026-01-01",
        "chunk_rows": vocabulary.CHUNK_ROWS,
        "days": 31,
        "files": FILES,
        "seed": SEED,
        "size": SIZE,
    }
    for source in SOURCES:
        stats = manifest["sources"][source]
        files = stats["files"].values()
        for key in ("rows", "clean_rows", "invalid_rows"):
            assert stats[key] == sum(f[key] for f in files)
        for kind, count in stats["defects"].items():
            assert count == sum(f["defects"][kind] for f in files)
        for f in files:
            invalid = sum(n for kind, n in f["defects"].items() if kind in INVALID_KINDS)
            duplicates = f["defects"]["duplicate_in_file"] + f["defects"]["duplicate_across_files"]
            assert f["invalid_rows"] == invalid
            assert f["rows"] == f["clean_rows"] + duplicates + invalid
    assert manifest["sources"]["user_events"]["clean_rows"] == SIZE


def test_manifest_counts_match_the_files(
    demo: GenerationReport, sources: dict[str, Source]
) -> None:
    for name, source in sources.items():
        stats = demo.manifest["sources"][name]["files"]
        seen: set[str] = set()
        for path, rows in zip(source.files, source.rows, strict=True):
            entry = stats[f"{name}/{path.name}"]
            lines = [row.line for row in rows]
            assert len(lines) == entry["rows"], path
            assert sum(not row.valid for row in rows) == entry["invalid_rows"], path
            assert len(lines) - len(set(lines)) == entry["defects"]["duplicate_in_file"], path
            assert sum(line in seen for line in lines) == entry["defects"]["duplicate_across_files"]
            seen.update(lines)
        assert sum(len(rows) for rows in source.rows) == demo.rows(name)


def test_refuses_to_overwrite_unless_asked(demo: GenerationReport, tmp_path: Path) -> None:
    out = tmp_path / "twice"
    generate(out, 100, 1, 3)
    with pytest.raises(FileExistsError):
        generate(out, 100, 1, 2)
    generate(out, 100, 1, 2, overwrite=True)
    assert not (out / "users" / "users_0003.csv").exists()
    assert len(list((out / "user_events").iterdir())) == 2


@pytest.mark.parametrize(
    ("size", "seed", "files"), [(0, 1, 1), (10, -1, 1), (10, 1, 0), (10, 1, 11), (10, 1, 101)]
)
def test_rejects_bad_parameters(tmp_path: Path, size: int, seed: int, files: int) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, size, seed, files)
