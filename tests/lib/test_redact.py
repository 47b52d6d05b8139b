"""The redactor on connection strings and messages that break naive parsers."""

from __future__ import annotations

import json
from urllib.parse import quote

import psycopg
import pytest
from confluent_kafka import KafkaException

from assets_project.lib.kafka import KafkaSettings
from assets_project.lib.redact import (
    REDACTED,
    RedactedError,
    Redactor,
    connection_secrets,
    environment_secrets,
    redacting_errors,
    redacts_errors,
)

PASSWORD = "s3cr%t p@ss/#'\"x"
HOST = "db.example.com"


def _parse_error(url: str) -> str:
    """libpq's own message for a connection string it cannot parse (no network involved)."""
    with pytest.raises(psycopg.ProgrammingError) as raised:
        psycopg.conninfo.conninfo_to_dict(url)
    return str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bob:{PASSWORD}@{HOST}:5432/shop",
        f"postgres://bob:{PASSWORD}@{HOST}/shop?sslmode=require",
        f"postgresql://bob:{quote(PASSWORD, safe='')}@{HOST}:5432/shop",
        f"host={HOST} user=bob password={PASSWORD} dbname=shop",
        psycopg.conninfo.make_conninfo(host=HOST, user="bob", password=PASSWORD, dbname="shop"),
        f"postgresql://{HOST}/shop?user=bob&password={quote(PASSWORD, safe='')}",
    ],
    ids=["uri-unencoded", "uri-query", "uri-encoded", "kv-unquoted", "kv-quoted", "uri-param"],
)
def test_the_password_of_every_connection_string_form_is_found(url: str) -> None:
    assert PASSWORD in connection_secrets(url)
    redact = Redactor.for_connection(url, environment=False)
    for text in (
        f"could not connect with {PASSWORD}",
        f"dsn: {url}",
        f"quoted: {json.dumps(PASSWORD)} and {PASSWORD!r}",
        f"encoded: {quote(PASSWORD, safe='')}",
    ):
        cleaned = redact(text)
        assert REDACTED in cleaned
        for piece in ("s3cr", "p@ss/", "ss/#", quote(PASSWORD, safe="")[:8]):
            assert piece not in cleaned, (text, cleaned)
    # The host and user stay readable.
    message = (
        f'connection to server at "{HOST}" failed: password authentication failed for user "bob"'
    )
    assert redact(message) == message


@pytest.mark.parametrize(
    ("url", "expected", "quotes_the_password"),
    [
        (f"postgresql://bob:{PASSWORD}@{HOST}/shop", "invalid percent-encoded token", True),
        ("postgresql://bob:pass word@host/shop", "unexpected spaces found", True),
        ("postgresql://bob:ab@cd%zz@host/shop", "invalid percent-encoded token", True),
        (f"host={HOST} user=bob password={PASSWORD} dbname=shop", 'missing "="', True),
        (f"host={HOST} password='s3cr%t p@ss", "unterminated quoted string", False),
    ],
)
def test_libpq_parse_errors_lose_every_piece_of_the_password(
    url: str, expected: str, quotes_the_password: bool
) -> None:
    """libpq quotes the token it chokes on: a piece of the password cut at an unencoded char."""
    message = _parse_error(url)
    secrets = connection_secrets(url)
    pieces = {s[i : i + 4] for s in secrets for i in range(len(s) - 3)}
    assert any(p in message for p in pieces) == quotes_the_password, message
    cleaned = Redactor.for_connection(url, environment=False)(message)
    assert expected in cleaned
    assert not [p for p in pieces if p in cleaned], cleaned


def test_texts_without_a_secret_are_left_alone() -> None:
    redact = Redactor(["hunter2-long"], whole=[f"postgresql://bob:pw-{PASSWORD}@{HOST}/shop"])
    for text in (
        'relation "public.orders" does not exist',
        "connection failed: Connection refused\n\tIs the server running?",
        "",
        "hunter",
    ):
        assert redact(text) == text
    assert not Redactor()
    assert Redactor()("anything") == "anything"


def test_short_and_setting_like_values_are_not_treated_as_secrets() -> None:
    environ = {
        "USE_TOKEN": "true",
        "PGPASSWORD": "pg-Secr3t!",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "KAFKA_SASL_PASSWORD": "kafka-pw",
        "DATABASE_URL": f"postgresql://bob:{PASSWORD}@{HOST}/shop",
        "WEBHOOK_URL": "https://alerts:tok-123456@hooks.example.com/x",
        "API_TOKEN": "ab",
        "LAKE_URI": "s3://bucket/lake",
    }
    found = environment_secrets(environ)
    assert {
        "pg-Secr3t!",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "kafka-pw",
        PASSWORD,
        "tok-123456",
    } <= found
    assert not {"true", "ab", "AKIAIOSFODNN7EXAMPLE", "s3://bucket/lake"} & found


def test_kafka_sasl_and_url_credentials() -> None:
    settings = KafkaSettings(
        bootstrap_servers="broker:9092", sasl_username="svc", sasl_password=PASSWORD
    )
    assert PASSWORD not in repr(settings)
    config = ";".join(f"{k}={v}" for k, v in settings.client_config().items())
    assert PASSWORD in connection_secrets(config)
    assert "tok3n-xyz" in connection_secrets("sasl_ssl://svc:tok3n-xyz@broker:9093")


def test_an_exception_chain_that_carries_a_secret_is_replaced_by_a_clean_copy() -> None:
    redact = Redactor([PASSWORD])
    try:
        try:
            raise ValueError(f"bad password {PASSWORD}")
        except ValueError as inner:
            raise psycopg.errors.SerializationFailure("could not serialize") from inner
    except psycopg.Error as exc:
        clean = redact.exception(exc)
    assert type(clean) is psycopg.errors.SerializationFailure
    assert clean.sqlstate == "40001"
    assert clean.__cause__ is None and clean.__suppress_context__
    assert "could not serialize" in str(clean)
    assert f"ValueError: bad password {REDACTED}" in str(clean)
    assert clean.__traceback__ is not None

    harmless = RuntimeError("nothing to hide")
    assert redact.exception(harmless) is harmless

    # An exception type that cannot take a message becomes a RedactedError naming it.
    odd = UnicodeDecodeError("utf-8", PASSWORD.encode(), 0, 1, f"in {PASSWORD}")
    replaced = redact.exception(odd)
    assert isinstance(replaced, RedactedError)
    assert "UnicodeDecodeError" in str(replaced) and PASSWORD not in str(replaced)


def test_redacting_errors_keeps_the_type_so_callers_still_catch_it() -> None:
    redact = Redactor([PASSWORD])
    with pytest.raises(KafkaException) as raised, redacting_errors(redact):
        raise KafkaException(f"sasl.password={PASSWORD} rejected")
    assert PASSWORD not in str(raised.value)
    assert raised.value.__suppress_context__

    @redacts_errors("url")
    def connect(url: str) -> None:
        psycopg.conninfo.conninfo_to_dict(url)

    with pytest.raises(psycopg.ProgrammingError) as parse_error:
        connect(f"postgresql://bob:{PASSWORD}@{HOST}/shop")
    assert "invalid percent-encoded token" in str(parse_error.value)
    assert "s3cr" not in str(parse_error.value)


def test_a_text_that_ends_like_a_secret_keeps_its_last_characters() -> None:
    """Only whole runs of a secret count: a text's tail is not a fragment of a secret's tail."""
    redact = Redactor(["attachments-token", ":version"])
    assert redact("Asset: raw/orders") == "Asset: raw/orders"
    assert redact('check "amounts_not_negative" on raw/version') == (
        'check "amounts_not_negative" on raw/version'
    )
    assert redact("token attachments-token") == "token ***"
