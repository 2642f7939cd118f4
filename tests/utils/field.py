"""Helpers of the issue-15 field tests: a webhook receiver and polling without timing."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.utils.receiver import PostReceiver
from tests.utils.wait import wait_until

__all__ = ["HookReceiver", "wait_until"]


class HookReceiver(PostReceiver):
    """A webhook receiver on 127.0.0.1 that answers 200 and keeps every JSON body.

    While :attr:`down` is True it answers 503 and keeps nothing (a receiver that is down);
    :attr:`refused` counts those attempts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.down = False
        self.refused = 0
        self._lock = threading.Lock()
        super().__init__()
        self.url = f"{self.base_url}/hook"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str | None, bytes]:
        with self._lock:
            down = self.down
            if down:
                self.refused += 1
            else:
                self.bodies.append(json.loads(body))
        return (503 if down else 200), None, b""

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in list(self.bodies) if b.get("type") == kind]
