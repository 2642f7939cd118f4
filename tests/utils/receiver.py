"""An HTTP receiver on 127.0.0.1 for the tests' webhooks and callbacks: the server plumbing
the webhook, Twilio-callback and field-test receivers share."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["PostReceiver"]


class PostReceiver:
    """Serves POSTs in daemon threads until :meth:`close`; each is given to :meth:`answer`.

    ``base_url`` is ``http://127.0.0.1:<port>`` (no trailing slash)."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, content_type, reply = owner.answer(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                if reply:
                    self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str | None, bytes]:
        """The status, content type (None: none) and body to answer a POST to ``path`` with."""
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
