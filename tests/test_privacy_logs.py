"""No personal data in the logs: a full flow through a live appliance (sends to two numbers,
a reply, a STOP, a privacy export and erase, a retention run) logged at DEBUG, then the
captured log is searched for the numbers' digits and the texts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

ANN, BOB = "+14156410011", "+14156410012"
BODIES = ("Your appointment is Tuesday 3pm with Dr Alvarez", "Lab results ready: call Ward 7 nurse desk")
REPLY = "Thanks I will come Tuesday afternoon"


def _wait(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def test_a_full_flow_logs_no_numbers_and_no_bodies(live_server_factory: Callable[..., Any],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="appliance")
    live = live_server_factory(simulate=2)
    c = live.client()
    for number, body in zip((ANN, BOB), BODIES):
        r = c.post("/v1/messages", json={"to": [number], "body": body})
        assert r.status_code == 202, r.text
    _wait(lambda: {m["status"] for m in c.get("/v1/messages").json()["items"]} <= {"sent", "delivered"}
          and len(c.get("/v1/messages").json()["items"]) == 2)
    live.simulators[0].deliver_sms(ANN, REPLY)
    live.simulators[1].deliver_sms(BOB, "STOP")
    _wait(lambda: c.get("/v1/opt-outs").json()["items"])
    _wait(lambda: len(c.get("/v1/inbound").json()["items"]) == 2)
    assert c.post(f"/v1/messages", json={"to": [BOB], "body": BODIES[1]}).json()["messages"][0]["status"] == "suppressed"
    assert c.get("/v1/privacy/%2B14156410011").status_code == 200
    assert c.post("/v1/privacy/%2B14156410012/erase").status_code == 200
    live.app.retention.run()
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert len(caplog.records) > 20  # DEBUG was on: the modems' traffic was logged
    for secret in ("4156410011", "4156410012", *BODIES, REPLY, "Alvarez", "Tuesday"):
        assert secret not in text, f"{secret!r} is in the log:\n" + "\n".join(
            line for line in text.splitlines() if secret in line)
