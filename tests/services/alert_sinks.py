"""Real alert sinks on 127.0.0.1: an HTTP server that keeps the JSON posted to it, and an SMTP
server (aiosmtpd) that keeps the mails it receives."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.services.http import free_port


@dataclass
class Webhook:
    """What an HTTP server received: (path, JSON body) per POST."""

    port: int
    posts: list[tuple[str, Any]] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        """An apprise URL that posts a Slack-compatible ``{"text": …}`` payload to ``path``."""
        return f"json://127.0.0.1:{self.port}{path}?:message=text&:title=&:type=&:version=&:attachments="


@contextmanager
def webhook_server(port: int = 0) -> Iterator[Webhook]:
    """An HTTP server on 127.0.0.1 (``port``, or a free one) answering 200 to every JSON POST."""
    received = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.posts.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    received.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """What an SMTP server received."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, to: str = "ops@example.com") -> str:
        """An apprise URL that sends plain SMTP (no TLS, no login) to this server."""
        return f"mailto://127.0.0.1:{self.port}?from=dagster@example.com&to={to}&mode=insecure"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """aiosmtpd on a free 127.0.0.1 port keeping every mail."""
    box = Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            box.messages.append(message)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def mail_text(message: EmailMessage) -> str:
    """The plain-text body of a mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
