"""Alerts: incidents opened and resolved by what the pipeline reports, and their delivery.

An *observation* says whether one incident key (a job's runs, one asset check, one asset's
freshness) is failing or healthy right now. :class:`AlertState` turns observations into
notifications: the first failing observation of a key opens its incident (one message), later
failing observations of an open incident say nothing, and the first healthy observation after
that resolves it (one "resolved" message). The state — the open incidents, the read position
in the event log and the messages not yet delivered — is plain JSON, kept in the alert sensor's
cursor (so in the Dagster instance): an incident stays one message across sensor ticks and
restarts.

Messages go to the sinks named in ``ALERT_URLS`` (apprise URLs; see :class:`AlertSettings`),
one apprise notifier per URL, so a sink that fails keeps its messages for the next tick
without holding back the others. The state never holds a sink URL (it may carry a token),
only a digest of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote

import apprise
from apprise.utils.parse import parse_urls

from assets_project.lib.redact import Redactor, environment_secrets

Severity = Literal["ERROR", "WARN"]
Status = Literal["open", "resolved"]

DEFAULT_UI_URL = "http://127.0.0.1:3000"
MAX_OUTBOX = 500
"""Undelivered messages kept at most; older ones are dropped (and the sensor says so)."""
MAX_DETAILS = 12
"""Detail lines (failing numbers, metadata) in one message at most."""
MAX_ERROR_CHARS = 1500
TOKEN_CHARS = 8
"""A piece of a sink URL's path or query this long is taken for a token (and redacted)."""
"""An error message is cut to this length in an alert."""


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and which ones are sent, from the environment.

    * ``ALERT_URLS``: apprise URLs separated by spaces, commas or new lines (secrets belong
      here, in the environment, never in a file of the repo). A generic JSON webhook with a
      Slack-compatible ``{"text": …}`` payload is
      ``json://host:port/path?:message=text&:title=&:type=&:version=&:attachments=``
      (``jsons://`` for HTTPS); a Slack incoming webhook is its ``https://hooks.slack.com/…``
      URL; e-mail over SMTP is ``mailto://user:password@smtp.host:587?to=ops@example.com``.
      Every alert is also written to the alert sensor's log.
    * ``ALERT_WARN``: ``1``/``true`` also alerts on WARN check failures and WARN freshness.
    * ``DAGSTER_UI_URL``: the UI's base URL for links (default ``http://127.0.0.1:3000``).
    """

    urls: tuple[str, ...] = ()
    warn: bool = False
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertSettings:
        """The settings of ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        urls = tuple(parse_urls(env.get("ALERT_URLS", "")))
        warn = env.get("ALERT_WARN", "").strip().lower() in {"1", "true", "yes", "on"}
        ui_url = (env.get("DAGSTER_UI_URL") or DEFAULT_UI_URL).rstrip("/")
        return cls(urls=urls, warn=warn, ui_url=ui_url)

    def alerting(self, severity: Severity) -> bool:
        """Whether a failure of this severity opens an incident."""
        return severity == "ERROR" or self.warn

    def redactor(self) -> Redactor:
        """A redactor for the sink URLs (whole, their passwords, and the long pieces of their
        paths and queries, where webhook services put their tokens) and the environment's
        other secrets. ``ALERT_URLS`` is taken URL by URL, not as one connection string."""
        environ = {k: v for k, v in os.environ.items() if k != "ALERT_URLS"}
        tokens = [token for url in self.urls for token in _url_tokens(url)]
        return Redactor([*environment_secrets(environ), *tokens], whole=self.urls)

    def run_url(self, run_id: str) -> str:
        """The run's page in the UI."""
        return f"{self.ui_url}/runs/{run_id}"

    def asset_url(self, asset: str, *, checks: bool = False) -> str:
        """The asset's page (``asset`` as ``raw/users``), or its checks tab."""
        return f"{self.ui_url}/assets/{asset}" + ("?view=checks" if checks else "")


def _url_tokens(url: str) -> list[str]:
    """Pieces of a URL's path and query that may be tokens (``TOKEN_CHARS`` long or more)."""
    rest = url.split("://", 1)[-1]
    after_host = re.split(r"[/?]", rest, maxsplit=1)[1] if re.search(r"[/?]", rest) else ""
    pieces = re.split(r"[/?&=,;]", unquote(after_host))
    return [piece for piece in pieces if len(piece) >= TOKEN_CHARS]


def sink_id(url: str) -> str:
    """A stable name for a sink that reveals nothing of its URL but the scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}#{hashlib.sha256(url.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Observation:
    """What one event says about an incident key.

    ``failing`` with a ``severity``: the key is failing; not ``failing``: it is healthy.
    ``subject`` names what failed (``check raw/users:users_contract``), ``details`` are the
    lines a message shows (asset, check, error, failing numbers), ``link`` is the UI page.
    """

    key: str
    failing: bool
    subject: str
    severity: Severity = "ERROR"
    run_id: str | None = None
    details: tuple[str, ...] = ()
    link: str | None = None
    timestamp: float = 0.0


@dataclass(frozen=True)
class Alert:
    """One message: an incident opened or resolved."""

    key: str
    status: Status
    subject: str
    severity: Severity
    run_id: str | None
    details: tuple[str, ...]
    link: str | None
    opened_at: float
    resolved_at: float | None = None

    @property
    def title(self) -> str:
        """The message's subject line."""
        if self.status == "open":
            return f"[lakehouse] {self.severity}: {self.subject}"
        return f"[lakehouse] RESOLVED: {self.subject}"

    @property
    def body(self) -> str:
        """The message: the title, then what, where and how to look at it."""
        lines = [self.title]
        if self.status == "resolved" and self.resolved_at is not None:
            minutes = max(0.0, self.resolved_at - self.opened_at) / 60
            lines.append(f"Recovered after {minutes:.1f} min.")
        lines += list(self.details[:MAX_DETAILS])
        if self.run_id:
            lines.append(f"Run: {self.run_id}")
        if self.link:
            lines.append(f"Link: {self.link}")
        lines.append(f"Incident: {self.key}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the cursor)."""
        data = asdict(self)
        data["details"] = list(self.details)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_json` wrote."""
        return cls(**{**data, "details": tuple(data.get("details", ()))})


@dataclass
class AlertState:
    """Open incidents, read positions in the event log and undelivered messages.

    ``after`` maps an event type to the storage id of the last event of that type read;
    ``open`` maps an incident key to the alert that opened it; ``outbox`` holds messages with
    the sinks (by :func:`sink_id`) that have not taken them yet.
    """

    after: dict[str, int] = field(default_factory=dict)
    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertState:
        """The state stored in a sensor cursor (a fresh state for none)."""
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(
            after={k: int(v) for k, v in data.get("after", {}).items()},
            open=dict(data.get("open", {})),
            outbox=list(data.get("outbox", [])),
        )

    def to_cursor(self) -> str:
        """The state as a sensor cursor (compact JSON)."""
        data = {"after": self.after, "open": self.open, "outbox": self.outbox}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def observe(self, observation: Observation) -> Alert | None:
        """Apply one observation; the message it calls for, if any."""
        opened = self.open.get(observation.key)
        if observation.failing and opened is None:
            alert = Alert(
                key=observation.key,
                status="open",
                subject=observation.subject,
                severity=observation.severity,
                run_id=observation.run_id,
                details=observation.details,
                link=observation.link,
                opened_at=observation.timestamp,
            )
            self.open[observation.key] = alert.to_json()
            return alert
        if not observation.failing and opened is not None:
            del self.open[observation.key]
            first = Alert.from_json(opened)
            return replace(
                first,
                status="resolved",
                run_id=observation.run_id,
                details=observation.details,
                link=observation.link or first.link,
                resolved_at=observation.timestamp,
            )
        return None

    def enqueue(self, alert: Alert, sinks: Iterable[str]) -> None:
        """Queue ``alert`` for the sinks (by id); the oldest messages go beyond MAX_OUTBOX."""
        pending = list(sinks)
        if not pending:
            return
        self.outbox.append({"alert": alert.to_json(), "sinks": pending})
        if len(self.outbox) > MAX_OUTBOX:
            excess = len(self.outbox) - MAX_OUTBOX
            self.dropped += excess
            del self.outbox[:excess]


@dataclass(frozen=True)
class SinkFailure:
    """A sink that did not take a message this tick (its error text already redacted)."""

    sink: str
    error: str
    waiting: int


def deliver(state: AlertState, settings: AlertSettings) -> list[SinkFailure]:
    """Send the outbox to its sinks, oldest first; what a sink took leaves the outbox.

    A sink that fails is not tried again this tick (its messages wait for the next one, in
    order); a sink no longer in ``ALERT_URLS`` is forgotten. Returns the failures.
    """
    notifiers = {sink_id(url): url for url in settings.urls}
    redact = settings.redactor()
    failed: dict[str, str] = {}
    for entry in state.outbox:
        alert = Alert.from_json(entry["alert"])
        remaining = []
        for sink in entry["sinks"]:
            if sink not in notifiers:
                continue
            if sink in failed:
                remaining.append(sink)
                continue
            error = _notify(notifiers[sink], alert)
            if error is not None:
                failed[sink] = redact(error)
                remaining.append(sink)
        entry["sinks"] = remaining
    state.outbox = [e for e in state.outbox if e["sinks"]]
    waiting = {s: sum(s in e["sinks"] for e in state.outbox) for s in failed}
    return [SinkFailure(sink=s, error=failed[s], waiting=waiting[s]) for s in failed]


def _notify(url: str, alert: Alert) -> str | None:
    """Send one message through apprise; ``None`` on success, else what apprise said."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "apprise does not understand this URL"
    with apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s") as captured:
        try:
            result = notifier.notify(title=alert.title, body=alert.body)
        except Exception as exc:  # a sink must never break the sensor
            return f"{type(exc).__name__}: {exc}"
    if result:
        return None
    said = captured.getvalue().strip().splitlines()
    return said[-1] if said else "the sink refused the message"
