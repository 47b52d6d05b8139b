"""The dead-letter replay as a Dagster job: a materialization of each raw asset, exactly once.

The dead letters come from ingesting demo drops under a stricter version of each source's
contract; the replay then re-validates them against the real (looser) contract. The oracle is
the same drops ingested under the real contract: after the replay, raw and dead-letter tables
must hold exactly the records that ingestion would have put there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from assets_project.definitions import defs
from assets_project.defs.ingestion.files import file_drop_assets
from assets_project.defs.ingestion.kafka import kafka_assets
from assets_project.defs.ingestion.postgres import database_source_assets
from assets_project.defs.ingestion.replay import REPLAY_JOB_NAME, dead_letter_replay_job
from assets_project.defs.quality.checks import contract_checks
from assets_project.defs.resources import KafkaResource, LakeResource, PostgresResource
from assets_project.demo.generate import generate
from assets_project.lib.contracts import Contract, load_contract, source_names
from assets_project.lib.ingest import ingest_file
from assets_project.lib.lake import LakeLayout
from tests.contract_documents import changed, document, table

SOURCES = source_names()
STRICT_MAX = 10  # the stricter contracts reject ids above this; the real ones accept them


def _strict(name: str, directory: Path) -> Contract:
    """``name``'s contract with ``max: STRICT_MAX`` on its first bigint column."""
    doc = document(name)
    column = next(p for p in table(doc)["properties"] if p["physicalType"] == "bigint")
    column["logicalTypeOptions"] = {"maximum": STRICT_MAX}
    return changed(name, directory, doc)


def _layout(data: Path) -> LakeLayout:
    return LakeLayout(data_dir=data, lake_uri=str(data / "lake"), warehouse_path=data / "w.duckdb")


def _ingest_all(drops: Path, layout: LakeLayout, contract_of: dict[str, Contract]) -> None:
    for name in SOURCES:
        for path in sorted((drops / name).iterdir()):
            ingest_file(path, contract_of[name], layout, source=f"{name}/{path.name}", batch_id="b")


def _identities(uri: str) -> list[tuple[str, int | None, str]]:
    table = DeltaTable(uri).to_pyarrow_table(columns=["_source", "_source_line", "_batch_id"])
    return sorted(
        zip(*(table[c].to_pylist() for c in table.column_names), strict=True),
        key=lambda r: (r[0], -1 if r[1] is None else r[1]),
    )


@pytest.fixture
def replayable(tmp_path: Path) -> tuple[LakeLayout, LakeLayout, dict[str, int]]:
    """(lake with dead letters to replay, reference lake, dead letters per source)."""
    drops = tmp_path / "drops"
    generate(drops, size=400, seed=7, files=1)
    strict_dir = tmp_path / "strict"
    strict_dir.mkdir()
    lake, reference = _layout(tmp_path / "lake_data"), _layout(tmp_path / "reference")
    _ingest_all(drops, lake, {name: _strict(name, strict_dir) for name in SOURCES})
    _ingest_all(drops, reference, {name: load_contract(name) for name in SOURCES})
    dead = {name: DeltaTable(lake.dlq_uri(name)).count() for name in SOURCES}
    for name in SOURCES:  # the test means something: every source has records to move
        assert dead[name] > DeltaTable(reference.dlq_uri(name)).count(), name
    return lake, reference, dead


def _definitions(layout: LakeLayout) -> dg.Definitions:
    """The code location's raw assets, their checks and the replay job, over ``layout``."""
    return dg.Definitions(
        assets=[*file_drop_assets, *database_source_assets, *kafka_assets],
        asset_checks=contract_checks,
        jobs=[dead_letter_replay_job],
        resources={
            "lake": LakeResource(
                data_dir=str(layout.data_dir),
                lake_uri=layout.lake_uri,
                warehouse_path=str(layout.warehouse_path),
            ),
            "postgres": PostgresResource(),
            "kafka": KafkaResource(),
        },
    )


def _replay_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        out[materialization.asset_key.path[-1]] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    return out


def test_replay_job_materializes_every_raw_asset_moving_each_record_once(
    replayable: tuple[LakeLayout, LakeLayout, dict[str, int]],
) -> None:
    lake, reference, dead = replayable
    job = _definitions(lake).resolve_job_def(REPLAY_JOB_NAME)
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(instance=instance)
        assert first.success
        metadata = _replay_metadata(first)
        assert set(metadata) == set(SOURCES)
        for name in SOURCES:
            strict_raw = len(_identities(lake.raw_uri(name))) - metadata[name]["rows_written"]
            moved = DeltaTable(reference.raw_uri(name)).count() - strict_raw
            still = DeltaTable(reference.dlq_uri(name)).count()
            assert metadata[name]["channel"] == "replay"
            assert (
                metadata[name]["rows_in"],
                metadata[name]["rows_written"],
                metadata[name]["rows_rejected"],
                metadata[name]["rows_already_in_raw"],
            ) == (dead[name], moved, still, 0), name
            assert (
                metadata[name]["dagster/row_count"] == DeltaTable(reference.raw_uri(name)).count()
            )
            # The lake now holds what ingesting under the real contract gives, each record once.
            assert _identities(lake.raw_uri(name)) == _identities(reference.raw_uri(name))
            assert _identities(lake.dlq_uri(name)) == _identities(reference.dlq_uri(name))
            latest = instance.get_latest_materialization_event(dg.AssetKey(["raw", name]))
            assert latest is not None and latest.run_id == first.run_id
        # The checks of the replayed assets ran in the replay's run.
        checked = {e.asset_key.path[-1] for e in first.get_asset_check_evaluations()}
        assert checked == set(SOURCES)

        again = job.execute_in_process(instance=instance)
        assert again.success
        for name, values in _replay_metadata(again).items():
            assert values["rows_written"] == 0, name
            assert _identities(lake.raw_uri(name)) == _identities(reference.raw_uri(name))


def test_replay_job_runs_only_the_selected_sources(
    replayable: tuple[LakeLayout, LakeLayout, dict[str, int]],
) -> None:
    lake, _, dead = replayable
    job = _definitions(lake).resolve_job_def(REPLAY_JOB_NAME)
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(["raw", "products"])]
        )
    assert set(_replay_metadata(result)) == {"products"}
    assert DeltaTable(lake.dlq_uri("users")).count() == dead["users"]


def test_two_cli_replays_at_once_are_two_runs_that_move_each_record_once(
    replayable: tuple[LakeLayout, LakeLayout, dict[str, int]], tmp_path: Path
) -> None:
    """Two ``python -m assets_project.dlq replay users products`` at once on one instance."""
    lake, reference, dead = replayable
    home = tmp_path / "dagster_home"
    env = {
        "DATA_DIR": str(lake.data_dir),
        "LAKE_URI": lake.lake_uri,
        "DAGSTER_HOME": str(home),
        "PATH": "/usr/bin:/bin",
    }
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:  # as `make dev` left it
        assert instance.get_runs(limit=1) == []
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "users"])) is None
    command = [sys.executable, "-m", "assets_project.dlq", "replay", "users", "products"]
    children = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=600) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in outputs]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for name in ("users", "products"):
            records = instance.fetch_materializations(dg.AssetKey(["raw", name]), limit=10).records
            assert len(records) == 2  # one materialization per run
            values = [
                {k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records
            ]
            assert {v["channel"] for v in values} == {"replay"}
            still = DeltaTable(reference.dlq_uri(name)).count()
            # Between them the two runs moved every record that passes now, once.
            assert sum(v["rows_written"] for v in values) == dead[name] - still
            assert _identities(lake.raw_uri(name)) == _identities(reference.raw_uri(name))
            assert _identities(lake.dlq_uri(name)) == _identities(reference.dlq_uri(name))
            for record in records:
                run = instance.get_run_by_id(record.run_id)
                assert run is not None and run.job_name == REPLAY_JOB_NAME
                assert any(f"Dagster run {run.run_id}" in out for out, _ in outputs)
                assert any(
                    f"{name}: {dead[name]} dead letters examined" in out for out, _ in outputs
                )
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "orders"])) is None


def test_a_replay_makes_eager_staging_models_rebuild(
    replayable: tuple[LakeLayout, LakeLayout, dict[str, int]],
) -> None:
    lake, _, _ = replayable
    job = _definitions(lake).resolve_job_def(REPLAY_JOB_NAME)
    staging = dg.AssetSelection.assets(dg.AssetKey(["stg_users"]))
    with dg.instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(defs, instance, asset_selection=staging)
        assert before.total_requested == 0  # raw/users was never materialized
        job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(["raw", "users"])])
        after = dg.evaluate_automation_conditions(
            defs, instance, asset_selection=staging, cursor=before.cursor
        )
        assert after.get_num_requested(dg.AssetKey(["stg_users"])) == 1
