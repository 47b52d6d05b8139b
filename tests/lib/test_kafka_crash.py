"""kill -9 of the ingesting process at random moments and at named points, then a normal run.

Every trial runs the ingestion in a fresh process, killed with SIGKILL either at a named point
(``ASSETS_PROJECT_FAILPOINT``: after consuming, after the dead-letter commit, between the raw
Parquet write and the raw Delta commit, after the raw commit but before the Kafka offset commit,
after the Kafka commit) or after a random delay. New messages arrive half-way. After the trials
a normal run finishes the topic; the lake must then hold exactly what one uninterrupted run
into a second lake holds: every message once, in raw or in dead-letter, each at its offset.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from assets_project.demo.produce import POISON, ensure_topic, event_lines, produce, with_poison
from assets_project.lib.contracts import load_contract
from assets_project.lib.failpoints import FAILPOINT_ENV, KAFKA_FAILPOINTS
from assets_project.lib.kafka import KafkaSettings, StreamIngestor, source_name
from assets_project.lib.lake import LakeLayout
from tests.services.tansu import TansuBroker

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from pathlib import Path
from assets_project.lib.contracts import load_contract
from assets_project.lib.kafka import KafkaSettings, StreamIngestor
from assets_project.lib.lake import LakeLayout

servers, topic, data, batch = sys.argv[1:5]
layout = LakeLayout(Path(data), data + "/lake", Path(data) / "warehouse.duckdb")
StreamIngestor(
    KafkaSettings(servers), load_contract("user_events"), layout,
    topic=topic, batch_id=batch, group_id="crash-test", chunk_messages=100,
).run(max_messages=400, max_seconds=30, idle_seconds=1)
"""
RANDOM_TRIALS = 12


def _layout(root: Path) -> LakeLayout:
    return LakeLayout(data_dir=root, lake_uri=str(root / "lake"), warehouse_path=root / "w.duckdb")


def _child(broker: TansuBroker, topic: str, root: Path, batch: str, crash_at: str | None):
    env = {k: v for k, v in os.environ.items() if k != FAILPOINT_ENV}
    if crash_at:
        env[FAILPOINT_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, broker.bootstrap_servers, topic, str(root), batch],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _orphan_parquet_files(layout: LakeLayout) -> int:
    """Parquet files in the raw table's folder that no commit references."""
    uri = layout.raw_uri("user_events")
    committed = {Path(u).name for u in DeltaTable(uri).file_uris()}
    return sum(1 for p in Path(uri).rglob("*.parquet") if p.name not in committed)


def _lake(layout: LakeLayout) -> tuple[dict[tuple[str, int], str], list[tuple[str, int]]]:
    """Raw rows as identity → event_id (asserting no identity twice) and dead-letter identities."""
    raw_rows = (
        DeltaTable(layout.raw_uri("user_events"))
        .to_pyarrow_table(columns=["_source", "_source_line", "event_id"])
        .to_pylist()
    )
    raw = {(r["_source"], r["_source_line"]): r["event_id"] for r in raw_rows}
    assert len(raw) == len(raw_rows), "a message is twice in the raw table"
    dlq_rows = (
        DeltaTable(layout.dlq_uri("user_events"))
        .to_pyarrow_table(columns=["_source", "_source_line"])
        .to_pylist()
    )
    dlq = [(r["_source"], r["_source_line"]) for r in dlq_rows]
    assert len(set(dlq)) == len(dlq), "a message is twice in the dead-letter table"
    return raw, dlq


def test_kill_9_at_any_moment_loses_and_duplicates_nothing(
    kafka_broker: TansuBroker, kafka_topic: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    ensure_topic(settings, kafka_topic, 3)
    lines = with_poison(event_lines(9000, seed=21), 2 * len(POISON), seed=21)
    waves = (lines[:6000], lines[6000:])
    delivered = produce(settings, kafka_topic, waves[0], track=True).delivered

    crashed = tmp_path / "crashed"
    layout = _layout(crashed)
    rng = random.Random(1234)
    trials = [("point", p) for p in KAFKA_FAILPOINTS for _ in range(2)]
    trials += [("random", None)] * RANDOM_TRIALS
    rng.shuffle(trials)
    outcomes: list[tuple[str, str | None, int]] = []
    orphans_seen = 0
    for number, (kind, point) in enumerate(trials):
        if number == len(trials) // 2:
            second = produce(settings, kafka_topic, waves[1], track=True).delivered
            delivered += [(len(waves[0]) + s, p, o, v) for s, p, o, v in second]
        process = _child(kafka_broker, kafka_topic, crashed, f"trial-{number}", point)
        if kind == "random":
            time.sleep(rng.uniform(0.3, 1.2))
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode in (0, -signal.SIGKILL), stderr.decode()[-2000:]
        outcomes.append((kind, point, process.returncode))
        if point == "kafka.after_parquet_write" and process.returncode == -signal.SIGKILL:
            orphans_seen = max(orphans_seen, _orphan_parquet_files(layout))

    assert len(trials) >= 20
    killed_at_points = [o for o in outcomes if o[0] == "point" and o[2] == -signal.SIGKILL]
    assert {o[1] for o in killed_at_points} == set(KAFKA_FAILPOINTS), outcomes
    assert sum(1 for o in outcomes if o[0] == "random" and o[2] == -signal.SIGKILL) >= 6, outcomes
    # The kill between the Parquet write and the Delta commit left files no reader sees.
    assert orphans_seen > 0

    # A normal run finishes the topic.
    final = _child(kafka_broker, kafka_topic, crashed, "final", None)
    final.communicate(timeout=120)
    assert final.returncode == 0
    contract = load_contract("user_events")
    while (
        StreamIngestor(
            settings, contract, layout, topic=kafka_topic, batch_id="drain", group_id="crash-test"
        )
        .run(max_messages=10**6, max_seconds=60, idle_seconds=1)
        .messages
    ):
        pass

    # The oracle: one uninterrupted run of the same topic into another lake.
    reference = _layout(tmp_path / "reference")
    StreamIngestor(
        settings, contract, reference, topic=kafka_topic, batch_id="ref", group_id="ref"
    ).run(max_messages=10**6, max_seconds=60, idle_seconds=1)
    raw, dlq = _lake(layout)
    expected_raw, expected_dlq = _lake(reference)
    assert raw == expected_raw
    assert sorted(dlq) == sorted(expected_dlq)

    # Every produced message is in exactly one table; each raw row is the message at its offset.
    produced = {(source_name(kafka_topic, p), o): (s, v) for s, p, o, v in delivered}
    assert len(produced) == len(lines)
    assert set(raw) | set(dlq) == set(produced) and not set(raw) & set(dlq)
    valid_ids = sorted(json.loads(produced[k][1])["event_id"] for k in raw)
    assert sorted(raw.values()) == valid_ids
    assert len(dlq) >= 2 * len(POISON)
    # Per partition, offsets follow the order the messages were produced in.
    for partition in range(3):
        name = source_name(kafka_topic, partition)
        sequence = [produced[k][0] for k in sorted(k for k in produced if k[0] == name)]
        assert sequence == sorted(sequence)


def test_two_processes_racing_on_one_topic_duplicate_nothing(
    kafka_broker: TansuBroker, kafka_topic: str, tmp_path: Path
) -> None:
    """Two consumers at once (as after a restart that overlaps the old run): the loser of each
    commit race fails without writing, the lake still holds every message once."""
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    ensure_topic(settings, kafka_topic, 2)
    delivered = produce(settings, kafka_topic, event_lines(3000, seed=31), track=True).delivered
    shared = tmp_path / "shared"
    codes: list[int] = []
    for round_ in range(4):
        racers = [_child(kafka_broker, kafka_topic, shared, f"r{round_}-{i}", None) for i in (0, 1)]
        for racer in racers:
            _, stderr = racer.communicate(timeout=120)
            codes.append(racer.returncode)
            if racer.returncode != 0:
                text = stderr.decode()
                assert "ConcurrentIngestionError" in text or "CommitFailedError" in text, text
    layout = _layout(shared)
    StreamIngestor(
        settings,
        load_contract("user_events"),
        layout,
        topic=kafka_topic,
        batch_id="end",
        group_id="crash-test",
    ).run(max_messages=10**6, max_seconds=60, idle_seconds=1)
    raw, dlq = _lake(layout)
    produced = {(source_name(kafka_topic, p), o) for _, p, o, _ in delivered}
    assert set(raw) | set(dlq) == produced and not set(raw) & set(dlq)
    assert any(code != 0 for code in codes), "no race was lost: the test did not race"
