"""dbt's invocation target folders are pruned to the newest, never a recent or foreign one."""

from __future__ import annotations

import os
from pathlib import Path

from assets_project.lib.dbt_artifacts import prune_invocation_folders, target_root

NOW = 1_800_000_000.0
HOUR = 3600.0


def _folder(root: Path, name: str, age_seconds: float, *, log_age: float | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    if log_age is not None:
        log = folder / "dbt.log"
        log.write_text("...")
        os.utime(log, (NOW - log_age, NOW - log_age))
    os.utime(folder, (NOW - age_seconds, NOW - age_seconds))
    return folder


def test_the_oldest_invocation_folders_go_and_the_rest_stays(tmp_path: Path) -> None:
    root = tmp_path / "target"
    # Ten builds of a day ago, an hour apart (index 0 the newest), as dagster-dbt names them.
    builds = [
        _folder(root, f"shop_dbt_models-{i:07x}-{i + 100:07x}", 86_400 + i * HOUR)
        for i in range(10)
    ]
    without_run = _folder(root, "abc1234", 200_000)  # a dbt command started without a run
    running = _folder(root, "shop_dbt_models-ffffff0-ffffff1", 3 * 86_400, log_age=60)
    recent = _folder(root, "shop_dbt_models-eeeeee0-eeeeee1", 600)
    (root / "manifest.json").write_text("{}")
    (root / "partial_parse.msgpack").write_bytes(b"\x00")
    foreign = _folder(root, "compiled", 10 * 86_400)
    not_ours = _folder(root, "shop_dbt_models-xyz", 10 * 86_400)

    removed = prune_invocation_folders(root, keep=4, min_age_seconds=HOUR, now=NOW)

    # Kept: the four newest (recent, running, then builds 0 and 1); the rest is removed.
    assert sorted(removed) == sorted([*builds[2:], without_run])
    assert all(folder.exists() for folder in (recent, running, builds[0], builds[1]))
    assert not any(folder.exists() for folder in removed)
    assert (root / "manifest.json").exists() and (root / "partial_parse.msgpack").exists()
    assert foreign.exists() and not_ours.exists()


def test_a_folder_younger_than_the_minimum_age_is_kept_beyond_the_count(tmp_path: Path) -> None:
    root = tmp_path / "target"
    young = [_folder(root, f"op-{i:07x}-{i:07x}", 60 + i) for i in range(5)]
    old = _folder(root, "op-aaaaaaa-bbbbbbb", 2 * HOUR)
    removed = prune_invocation_folders(root, keep=2, min_age_seconds=HOUR, now=NOW)
    assert removed == [old]
    assert all(folder.exists() for folder in young)


def test_no_target_folder_yet_is_nothing_to_prune(tmp_path: Path) -> None:
    assert prune_invocation_folders(tmp_path / "missing") == []


def test_the_target_path_follows_dbt_target_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert target_root(tmp_path) == tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", "/elsewhere/target")
    assert target_root(tmp_path) == Path("/elsewhere/target")
