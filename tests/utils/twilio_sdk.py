"""The official Twilio SDK pointed at a live appliance, and a local webhook receiver.

:func:`sdk_client` makes ``twilio.rest.Client`` talk to the appliance by setting its API
domain's ``base_url`` (``twilio.base.domain.Domain.absolute_url`` builds every URL from it,
including the ``next_page_uri`` of lists). :class:`Receiver` is a tiny ``http.server`` on
127.0.0.1 in a thread that records each POST and answers with :attr:`Receiver.reply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tests.utils.receiver import PostReceiver

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


class Receiver(PostReceiver):
    """Records form POSTs; answers ``status`` with ``reply`` (``content_type`` text/xml)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.reply = ""
        self.fail_next = 0
        super().__init__()
        self.url = self.base_url

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str | None, bytes]:
        status, reply = self.status, self.reply
        if self.fail_next > 0:
            self.fail_next -= 1
            status, reply = 500, ""
        else:
            self.requests.append(Received(path, f"{self.url}{path}", headers,
                                          dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))))
        return status, "text/xml", reply.encode("utf-8")
