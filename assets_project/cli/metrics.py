"""``python -m assets_project metrics serve [--port N]``: the pipeline's metrics for Prometheus.

Serves ``/metrics`` in the Prometheus text format on 127.0.0.1 (port 9464 unless ``--port``;
``--host`` to change the address). Every scrape reads the Dagster instance in ``DAGSTER_HOME``
(default ``<DATA_DIR>/dagster_home``, the instance of ``make dev``), nothing is cached:

* the last batch of every raw source (its newest materialization): rows in, written and
  rejected, reject rate, duration, time, and the event-time lag (now minus the newest event
  time in the batch's data, when the asset records it);
* the latest result of every asset check, and their count by severity and outcome;
* runs by status;
* the freshness state of every asset with a freshness policy.

``deploy/grafana/lakehouse.json`` is a Grafana dashboard of these metrics.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from assets_project.defs.sources import raw_asset_key
from assets_project.lib.contracts import source_names
from assets_project.lib.metrics import event_time_lag_seconds, number, reject_rate

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464
PREFIX = "lakehouse"
BATCH_GAUGES = {
    "rows_in": ("batch_rows_in", "Rows read by the last batch of the source."),
    "rows_written": ("batch_rows_written", "Rows the last batch wrote to the raw table."),
    "rows_rejected": ("batch_rows_rejected", "Rows the last batch sent to the dead letters."),
    "duration_s": ("batch_duration_seconds", "Duration of the last batch's ingestion."),
}


def project_check_keys() -> list[dg.AssetCheckKey]:
    """The asset checks of the code location (loaded once, when the server starts)."""
    from assets_project.definitions import defs  # the whole code location, on demand

    return sorted(defs.resolve_asset_graph().asset_check_keys, key=lambda k: k.to_user_string())


class LakehouseCollector(Collector):
    """Reads the pipeline's metrics from a Dagster instance on every scrape."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        check_keys: Sequence[dg.AssetCheckKey],
        sources: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instance = instance
        self.check_keys = list(check_keys)
        self.sources = list(sources if sources is not None else source_names())
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One scrape: every metric family, read now."""
        yield from self._batches()
        yield from self._checks()
        yield self._runs()
        yield self._freshness()

    def _batches(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        keys = {source: raw_asset_key(source) for source in self.sources}
        latest = self.instance.get_latest_materialization_events(list(keys.values()))
        gauges = {
            key: GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=["source"])
            for key, (name, text) in BATCH_GAUGES.items()
        }
        rate = GaugeMetricFamily(
            f"{PREFIX}_batch_reject_rate", "Rejected over read rows, last batch.", labels=["source"]
        )
        at = GaugeMetricFamily(
            f"{PREFIX}_batch_timestamp_seconds",
            "When the last batch was materialized.",
            labels=["source"],
        )
        info = GaugeMetricFamily(
            f"{PREFIX}_batch_info",
            "The last batch (its run id) and its channel.",
            labels=["source", "batch_id", "channel"],
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_event_time_lag_seconds",
            "Now minus the newest event time in the source's last batch.",
            labels=["source"],
        )
        for source, key in keys.items():
            entry = latest.get(key)
            materialization = entry.asset_materialization if entry is not None else None
            if entry is None or materialization is None:
                continue
            metadata = dict(materialization.metadata)
            for name, gauge in gauges.items():
                value = number(metadata, name)
                if value is not None:
                    gauge.add_metric([source], value)
            if (value := reject_rate(metadata)) is not None:
                rate.add_metric([source], value)
            at.add_metric([source], entry.timestamp)
            channel = str(metadata["channel"].value) if "channel" in metadata else ""
            info.add_metric([source, entry.run_id, channel], 1)
            if (seconds := event_time_lag_seconds(metadata, now)) is not None:
                lag.add_metric([source], seconds)
        yield from gauges.values()
        yield from (rate, at, info, lag)

    def _checks(self) -> Iterator[GaugeMetricFamily]:
        passed = GaugeMetricFamily(
            f"{PREFIX}_asset_check_passed",
            "Latest result of an asset check: 1 passed, 0 failed.",
            labels=["asset", "check", "severity"],
        )
        counts: dict[tuple[str, str], int] = {}
        records = self.instance.event_log_storage.get_asset_check_summary_records(self.check_keys)
        for key in self.check_keys:
            summary = records.get(key)
            execution = summary.last_completed_check_execution_record if summary else None
            event = execution.event.dagster_event if execution and execution.event else None
            if event is None:
                continue
            evaluation = event.asset_check_evaluation_data
            severity = evaluation.severity.value
            asset = "/".join(key.asset_key.path)
            passed.add_metric([asset, key.name, severity], 1 if evaluation.passed else 0)
            outcome = "passed" if evaluation.passed else "failed"
            counts[(severity, outcome)] = counts.get((severity, outcome), 0) + 1
        by_severity = GaugeMetricFamily(
            f"{PREFIX}_asset_checks",
            "Asset checks by severity and the outcome of their latest evaluation.",
            labels=["severity", "outcome"],
        )
        for severity in ("ERROR", "WARN"):
            for outcome in ("passed", "failed"):
                by_severity.add_metric([severity, outcome], counts.get((severity, outcome), 0))
        yield passed
        yield by_severity

    def _runs(self) -> GaugeMetricFamily:
        runs = GaugeMetricFamily(f"{PREFIX}_runs", "Dagster runs by status.", labels=["status"])
        for status in dg.DagsterRunStatus:
            count = self.instance.get_runs_count(dg.RunsFilter(statuses=[status]))
            runs.add_metric([status.value.lower()], count)
        return runs

    def _freshness(self) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(
            f"{PREFIX}_freshness_state",
            "Freshness state of an asset (1 for its current state).",
            labels=["asset", "state"],
        )
        records = self.instance.get_freshness_state_records(self.instance.get_asset_keys())
        for key, record in sorted(records.items(), key=lambda item: item[0].to_user_string()):
            if record.freshness_state == FreshnessState.NOT_APPLICABLE:
                continue
            asset = "/".join(key.path)
            for state in (FreshnessState.PASS, FreshnessState.WARN, FreshnessState.FAIL):
                gauge.add_metric([asset, state.value.lower()], int(record.freshness_state == state))
        return gauge


def serve(
    collector: Collector, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``collector`` alone on ``host:port`` in a thread (``port`` 0: a free one)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return start_http_server(port, addr=host, registry=registry)


def main(argv: Sequence[str] | None = None) -> int:
    """``metrics serve``: serve until interrupted."""
    from assets_project.dlq import dagster_home

    parser = argparse.ArgumentParser(prog="python -m assets_project metrics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve /metrics for Prometheus")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        collector = LakehouseCollector(instance, project_check_keys())
        server, thread = serve(collector, args.host, args.port)
        host, port = server.server_address[:2]
        log.info("serving metrics of %s on http://%s:%s/metrics", home, host, port)
        try:
            while thread.is_alive():
                thread.join(timeout=1)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
