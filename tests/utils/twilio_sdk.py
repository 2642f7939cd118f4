"""The official Twilio SDK pointed at a live appliance, and a local webhook receiver.

:func:`sdk_client` makes ``twilio.rest.Client`` talk to the appliance by setting its API
domain's ``base_url`` (``twilio.base.domain.Domain.absolute_url`` builds every URL from it,
including the ``next_page_uri`` of lists). :class:`Receiver` is a tiny ``http.server`` on
127.0.0.1 in a thread that records each POST and answers with :attr:`Receiver.reply`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Received", "Receiver", "sdk_client"]


def sdk_client(base_url: str, username: str, password: str, account_sid: str | None = None) -> Any:
    from twilio.rest import Client

    client = Client(username, password, account_sid=account_sid)
    client.api.base_url = base_url
    return client


@dataclass(frozen=True)
class Received:
    path: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]


class Receiver:
    """Records form POSTs; answers ``status`` with ``reply`` (``content_type`` text/xml)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.reply = ""
        self.fail_next = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                status, reply = owner.status, owner.reply
                if owner.fail_next > 0:
                    owner.fail_next -= 1
                    status, reply = 500, ""
                else:
                    owner.requests.append(Received(
                        self.path, f"{owner.url}{self.path}", {k: v for k, v in self.headers.items()},
                        dict(parse_qsl(body, keep_blank_values=True)),
                    ))
                data = reply.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
