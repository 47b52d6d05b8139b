"""Incidents, the alert state kept in the sensor cursor, and the settings from the environment."""

from __future__ import annotations

from assets_project.lib.alerts import (
    MAX_OUTBOX,
    AlertSettings,
    AlertState,
    Observation,
    deliver,
    sink_id,
)

FAILING = Observation(key="check:raw/users:reject_rate", failing=True, subject="check failed")
HEALTHY = Observation(key="check:raw/users:reject_rate", failing=False, subject="check passed")


def test_an_incident_opens_once_and_resolves_once() -> None:
    state = AlertState()
    opened = state.observe(FAILING)
    assert opened is not None and opened.status == "open"
    assert state.observe(FAILING) is None  # still open: nothing to say
    resolved = state.observe(HEALTHY)
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.subject == "check failed"  # named as when it opened
    assert state.observe(HEALTHY) is None
    assert state.observe(FAILING) is not None  # a new incident


def test_the_state_survives_the_cursor_and_holds_no_sink_url() -> None:
    url = "json://hooks.example/T000/B000/XXXXsecretXXXX"
    state = AlertState()
    alert = state.observe(FAILING)
    assert alert is not None
    state.enqueue(alert, [sink_id(url)])
    state.after = {"PIPELINE_FAILURE": 7}
    cursor = state.to_cursor()
    assert "XXXXsecretXXXX" not in cursor and "hooks.example" not in cursor
    again = AlertState.from_cursor(cursor)
    assert again.after == {"PIPELINE_FAILURE": 7}
    assert again.observe(FAILING) is None  # still open after a "restart"
    assert again.outbox == state.outbox


def test_the_outbox_keeps_the_newest_messages() -> None:
    state = AlertState()
    for index in range(MAX_OUTBOX + 3):
        alert = state.observe(
            Observation(key=f"run:job{index}", failing=True, subject=f"run {index}")
        )
        assert alert is not None
        state.enqueue(alert, ["json#1"])
    assert len(state.outbox) == MAX_OUTBOX and state.dropped == 3
    assert state.outbox[0]["alert"]["subject"] == "run 3"


def test_settings_from_the_environment() -> None:
    settings = AlertSettings.from_env(
        {
            "ALERT_URLS": "json://127.0.0.1:9/hook?:message=text, "
            "mailto://u:pw@smtp.example:587?to=a@example.com,b@example.com\n",
            "ALERT_WARN": "true",
            "DAGSTER_UI_URL": "https://dagster.example/",
        }
    )
    assert settings.urls == (
        "json://127.0.0.1:9/hook?:message=text",
        "mailto://u:pw@smtp.example:587?to=a@example.com,b@example.com",
    )
    assert settings.warn and settings.alerting("WARN")
    assert settings.run_url("abc") == "https://dagster.example/runs/abc"
    defaults = AlertSettings.from_env({})
    assert defaults.urls == () and not defaults.alerting("WARN") and defaults.alerting("ERROR")
    assert defaults.asset_url("raw/users") == "http://127.0.0.1:3000/assets/raw/users"


def test_a_url_apprise_does_not_understand_is_a_failing_sink_not_an_error() -> None:
    settings = AlertSettings(urls=("nosuchscheme://x/yyyyyyyyyyyy",))
    state = AlertState()
    alert = state.observe(FAILING)
    assert alert is not None
    state.enqueue(alert, [sink_id(u) for u in settings.urls])
    (failure,) = deliver(state, settings)
    assert "does not understand" in failure.error and failure.waiting == 1
    assert len(state.outbox) == 1
    # A sink removed from ALERT_URLS is forgotten, and its messages with it.
    assert deliver(state, AlertSettings()) == [] and state.outbox == []
