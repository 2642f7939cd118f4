"""Helpers of the issue-15 field tests: a webhook receiver and polling without timing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.utils.wait import wait_until

__all__ = ["HookReceiver", "wait_until"]


class HookReceiver:
    """A webhook receiver on 127.0.0.1 that answers 200 and keeps every JSON body.

    While :attr:`down` is True it answers 503 and keeps nothing (a receiver that is down);
    :attr:`refused` counts those attempts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.down = False
        self.refused = 0
        lock = threading.Lock()
        bodies = self.bodies
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    if receiver.down:
                        receiver.refused += 1
                    else:
                        bodies.append(json.loads(raw))
                self.send_response(503 if receiver.down else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in list(self.bodies) if b.get("type") == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
