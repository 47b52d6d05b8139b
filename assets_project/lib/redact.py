"""Keep credentials out of errors, log lines, metadata and Dagster's stored events.

A :class:`Redactor` knows the secrets of the connections a component uses (the password of a
PostgreSQL URI or ``key=value`` string, the ``user:password@`` of a URL, a SASL password, the
secret-named variables of the environment) and replaces them in any text with ``***``. It also
replaces:

* every whole connection string it was given (a DSN as a whole is a credential);
* the usual encodings of a secret (percent-encoded, JSON- and repr-escaped, libpq-quoted);
* fragments of a secret that a parser quotes back: libpq reports a malformed URI with the token
  it choked on (``invalid percent-encoded token: "s3cr%t p"``), which is a piece of the password
  cut at an unencoded ``@``, ``/``, ``#`` or space. Any run of at least two characters right
  after a quote (or at least :data:`MIN_FRAGMENT` anywhere) that occurs inside a secret is
  replaced.

Secrets are taken generously: when a URI's password holds unencoded ``@`` or ``/``, everything
between the first ``:`` of the user part and the last ``@`` counts as the password, so a
password a parser would cut short is still found whole.

:func:`redacting_errors` applies a redactor at a boundary: an exception leaving the block whose
message, arguments or chained exceptions (``__cause__``/``__context__``, which Dagster stores
with the failure) carry a secret is replaced by a copy of the same type with the redacted
message and no chain. Exceptions that carry no secret pass through untouched.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, unquote

REDACTED = "***"
MIN_SECRET = 3
"""Shorter secrets are not searched for (they would blank out ordinary words)."""
MIN_FRAGMENT = 8
"""A run of this many characters of a secret is replaced wherever it stands."""
MIN_QUOTED_FRAGMENT = 2
"""A run of this many characters of a secret is replaced when it follows a quote."""

_QUOTES = "\"'`\u00ab\u201c\u2018"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# libpq key=value and URI query parameters that hold a secret.
_SECRET_KEYS = (
    r"password|passwd|pwd|sslpassword|sasl\.password|sasl\.oauthbearer\.client\.secret|"
    r"secret|secret_access_key|aws_secret_access_key|session_token|aws_session_token|"
    r"token|access_token|api_key|apikey|client_secret|sslkey"
)
_KEY_VALUE = re.compile(rf"(?:^|(?<=[\s?&;,]))(?:{_SECRET_KEYS})\s*=\s*", re.IGNORECASE)
_NEXT_KEY = re.compile(r"\s+[A-Za-z_][\w.]*\s*=|[&;]")
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY(?!_ID)",
    re.IGNORECASE,
)
_CONNECTION_NAME = re.compile(r"(URL|URLS|URI|DSN|SERVERS|CONNECTION|CONN)$", re.IGNORECASE)

# Values of secret-named variables that are settings, not secrets (``USE_TOKEN=true``).
_NOT_SECRETS = {"true", "false", "yes", "no", "none", "null", "on", "off", "enabled", "disabled"}

E = TypeVar("E", bound=BaseException)
F = TypeVar("F", bound=Callable[..., Any])


def _uri_passwords(text: str) -> set[str]:
    """Passwords of the ``scheme://user:password@host`` URLs in ``text`` (raw, undecoded)."""
    found: set[str] = set()
    starts = [m.end() for m in _SCHEME.finditer(text)]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        rest = text[start:end]
        # Standard parse: the authority ends at the first "/", "?" or "#".
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in authority:
            user_info = authority.rsplit("@", 1)[0]
            if ":" in user_info:
                found.add(user_info.split(":", 1)[1])
        # Generous parse: an unencoded "@", "/", "#" or space belongs to the password.
        if "@" in rest:
            user_info = rest.rsplit("@", 1)[0]
            if ":" in user_info:
                found.add(user_info.split(":", 1)[1])
    return found


def _key_value_secrets(text: str) -> set[str]:
    """Values of ``password=…``-like keys in a libpq string, URI query or librdkafka config."""
    found: set[str] = set()
    for match in _KEY_VALUE.finditer(text):
        rest = text[match.end() :]
        if rest.startswith("'"):
            # libpq quoting: backslash escapes; an unterminated value runs to the end.
            value, escaped = [], False
            for char in rest[1:]:
                if escaped:
                    value.append(char)
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == "'":
                    break
                else:
                    value.append(char)
            found.add("".join(value))
            closing = re.search(r"(?<!\\)'", rest[1:])
            found.add(rest[1 : closing.start() + 1] if closing else rest[1:])
        # Unquoted (or malformed): up to whitespace, and generously up to the next key.
        found.add(re.split(r"[\s&;]", rest, maxsplit=1)[0])
        following = _NEXT_KEY.search(rest)
        found.add(rest[: following.start()] if following else rest)
    return found


def connection_secrets(text: str) -> set[str]:
    """The secret parts of a connection string, URI, URL or comma-separated list of them.

    Covers ``scheme://user:password@…`` (also with unencoded ``%``, ``@``, ``/``, ``#`` or
    spaces in the password), ``password=…`` in libpq ``key=value`` strings and URI queries,
    and ``sasl.password=…``-like keys. The percent-decoded form of each is included.
    """
    found = _uri_passwords(text) | _key_value_secrets(text)
    found |= {unquote(s) for s in found}
    return {s.strip() for s in found if len(s.strip()) >= MIN_SECRET}


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Secrets in the environment: values of secret-named variables (``*PASSWORD*``,
    ``*SECRET*``, ``*TOKEN*``, ``AWS_SECRET_ACCESS_KEY``, …) and the credentials inside
    connection variables (``DATABASE_URL``, ``*_URI``, ``*_DSN``, ``*_SERVERS``)."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if _SECRET_NAME.search(name):
            found.add(value)
        if _CONNECTION_NAME.search(name) or _SCHEME.search(value):
            found |= connection_secrets(value)
    return {s for s in found if len(s) >= MIN_SECRET and s.lower() not in _NOT_SECRETS}


def _variants(secret: str) -> set[str]:
    """How a secret may be written in a message: as is, encoded or escaped."""
    variants = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),  # libpq key=value quoting
        json.dumps(repr(secret)[1:-1])[1:-1],
    }
    decoded = unquote(secret)
    if decoded != secret:
        variants |= {decoded, json.dumps(decoded)[1:-1], repr(decoded)[1:-1]}
    return {v for v in variants if len(v) >= MIN_SECRET}


class Redactor:
    """Replaces secrets, and the connection strings holding them, with ``***`` in text."""

    def __init__(self, secrets: Iterable[str | None] = (), *, whole: Iterable[str | None] = ()):
        """``secrets``: passwords, keys, tokens; ``whole``: connection strings, replaced whole
        (their own secrets are added)."""
        self._whole = {w for w in whole if w and len(w) >= MIN_SECRET}
        plain = {s for s in secrets if s and len(s) >= MIN_SECRET}
        for text in self._whole:
            plain |= connection_secrets(text)
        self._secrets = plain
        variants: set[str] = set(self._whole)
        for secret in plain:
            variants |= _variants(secret)
        self._exact = sorted(variants, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(v) for v in self._exact)) if self._exact else None
        )
        fragment_sources = [v for v in variants if v not in self._whole]
        self._sources = fragment_sources
        # Whole-length pieces only: a secret's short tail must not match a text's short tail.
        self._pairs = {
            s[i : i + MIN_QUOTED_FRAGMENT]
            for s in fragment_sources
            for i in range(len(s) - MIN_QUOTED_FRAGMENT + 1)
        }
        self._grams = {
            s[i : i + MIN_FRAGMENT]
            for s in fragment_sources
            for i in range(len(s) - MIN_FRAGMENT + 1)
        }

    @classmethod
    def for_connection(cls, *connections: str | None, environment: bool = True) -> Redactor:
        """A redactor for these connection strings (and, by default, the environment's secrets)."""
        return cls(environment_secrets() if environment else (), whole=connections)

    def __bool__(self) -> bool:
        return bool(self._exact)

    def _in_secret(self, piece: str) -> bool:
        return any(piece in source for source in self._sources)

    def _fragments(self, text: str) -> str:
        """Replace runs of secret characters after a quote, and long runs anywhere."""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            after_quote = i > 0 and text[i - 1] in _QUOTES
            length = 0
            if after_quote and text[i : i + MIN_QUOTED_FRAGMENT] in self._pairs:
                length = MIN_QUOTED_FRAGMENT
            elif text[i : i + MIN_FRAGMENT] in self._grams:
                length = MIN_FRAGMENT
            if length and self._in_secret(text[i : i + length]):
                while i + length < n and self._in_secret(text[i : i + length + 1]):
                    length += 1
                out.append(REDACTED)
                i += length
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def __call__(self, text: str) -> str:
        """``text`` with every secret, encoded secret and secret fragment replaced by ``***``."""
        if not self._exact or not text:
            return text
        assert self._pattern is not None
        return self._fragments(self._pattern.sub(REDACTED, text))

    def leaks(self, text: str) -> bool:
        """Whether ``text`` carries a secret this redactor knows."""
        return bool(text) and self(text) != text

    def value(self, value: Any) -> Any:
        """``value`` with secrets redacted inside strings, lists, tuples and dict values."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value

    def exception(self, exc: E) -> E | RedactedError:
        """``exc`` when neither it nor its chain carries a secret; otherwise a copy of the
        same type (same SQLSTATE for psycopg errors) with the redacted message, the messages
        of its causes appended, and no chain."""
        chain = list(_chain(exc))
        if not any(self.leaks(text) for error in chain for text in _texts(error)):
            return exc
        message = self(str(exc).strip())
        causes: list[str] = []
        for error in chain[1:]:
            text = self(str(error).strip())
            if text and text not in message and not any(text in c for c in causes):
                causes.append(f"{type(error).__name__}: {text}")
        if causes:
            message = f"{message} (from {'; '.join(causes)})"
        try:
            clean: BaseException = type(exc)(message)
            if str(clean) != message:
                raise TypeError("the exception does not keep its message")
        except Exception:
            clean = RedactedError(f"{type(exc).__name__}: {message}")
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is not None and getattr(clean, "sqlstate", None) != sqlstate:
            clean.sqlstate = sqlstate  # type: ignore[attr-defined]
        clean.__cause__ = None
        clean.__suppress_context__ = True
        return clean.with_traceback(exc.__traceback__)  # type: ignore[return-value]


class RedactedError(Exception):
    """An error whose original type could not carry the redacted message."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception chained to it that a traceback shows (a context suppressed
    by ``raise … from …`` is not shown, nor stored by Dagster), each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        context = None if error.__suppress_context__ else error.__context__
        pending += [e for e in (error.__cause__, context) if e is not None]


def _texts(error: BaseException) -> Iterator[str]:
    yield str(error)
    yield repr(error)
    for argument in error.args:
        yield str(argument)


@contextmanager
def redacting_errors(redactor: Redactor) -> Iterator[None]:
    """Exceptions leaving the block carry no secret ``redactor`` knows (see
    :meth:`Redactor.exception`)."""
    try:
        yield
    except Exception as exc:
        clean = redactor.exception(exc)
        if clean is exc:
            raise
        raise clean from None


def redacts_errors(connection_argument: str) -> Callable[[F], F]:
    """Decorator: exceptions leaving the function carry none of the credentials in its
    argument ``connection_argument`` (a connection string) nor the environment's secrets."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                bound = signature.bind_partial(*args, **kwargs)
                connection = bound.arguments.get(connection_argument)
                clean = Redactor.for_connection(connection).exception(exc)
                if clean is exc:
                    raise
                raise clean from None

        return wrapper  # type: ignore[return-value]

    return decorate
