"""End-to-end through HTTP: the running appliance (simulated modems) behind uvicorn."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.utils.wait import wait_until

PROBLEM = "application/problem+json"


def wait_status(client: httpx.Client, mid: int, statuses: set[str], timeout: float = 10.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        doc = client.get(f"/v1/messages/{mid}").json()
        return doc if doc["status"] in statuses else None

    return wait_until(check, timeout, what=f"message {mid} to become {statuses}")  # type: ignore[no-any-return]


@pytest.fixture
def live(live_server: Any) -> Any:
    return live_server


def test_send_then_sent_then_delivered_by_status_report(live: Any) -> None:
    with live.client() as c:
        r = c.post("/v1/messages", json={"to": "+14155550100", "body": "hello from the API"})
        assert r.status_code == 202, r.text
        mid = r.json()["messages"][0]["id"]
        sent = wait_status(c, mid, {"sent"})
        [part] = sent["part_details"]
        assert part["state"] == "sent" and part["mr"] is not None and part["modem"] == sent["modem"]
        sim = next(s for s in live.simulators if s.name == sent["modem"])
        assert any(rec.to == "+14155550100" and rec.text == "hello from the API" for rec in sim.sent)
        sim.send_status_report(part["mr"], recipient="+14155550100")
        delivered = wait_status(c, mid, {"delivered"})
        assert delivered["delivered_at"] is not None
        assert delivered["part_details"][0]["state"] == "delivered"
        assert delivered["part_details"][0]["report_status"] == 0


def test_multi_recipient_with_a_bad_and_an_opted_out_number(live: Any) -> None:
    with live.client() as c:
        assert c.post("/v1/opt-outs", json={"number": "+14155550177"}).status_code == 201
        r = c.post("/v1/messages", json={"to": ["+14155550101", "not-a-number", "(415) 555-0177"], "body": "news"})
        assert r.status_code == 202, r.text
        doc = r.json()
        assert [e["to"] for e in doc["errors"]] == ["not-a-number"]
        statuses = {m["to"]: m["status"] for m in doc["messages"]}
        assert statuses == {"+14155550101": "queued", "+14155550177": "suppressed"}
        ids = {m["to"]: m["id"] for m in doc["messages"]}
        wait_status(c, ids["+14155550101"], {"sent"})
        assert c.get(f"/v1/messages/{ids['+14155550177']}").json()["status"] == "suppressed"
        assert not any(rec.to == "+14155550177" for s in live.simulators for rec in s.sent)


def test_idempotent_retry_and_conflicting_reuse(live: Any) -> None:
    with live.client() as c:
        payload = {"to": "+14155550102", "body": "exactly once"}
        first = c.post("/v1/messages", json=payload, headers={"Idempotency-Key": "order-17"})
        assert first.status_code == 202
        wait_status(c, first.json()["messages"][0]["id"], {"sent"})
        again = c.post("/v1/messages", json=payload, headers={"Idempotency-Key": "order-17"})
        assert (again.status_code, again.json()) == (202, first.json())
        clash = c.post("/v1/messages", json={**payload, "body": "other"}, headers={"Idempotency-Key": "order-17"})
        assert clash.status_code == 409 and clash.headers["content-type"].startswith(PROBLEM)
        time.sleep(0.2)
        sends = [rec for s in live.simulators for rec in s.sent if rec.to == "+14155550102"]
        assert len(sends) == 1


def test_cancel_a_scheduled_message(live: Any) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    with live.client() as c:
        mid = c.post("/v1/messages", json={"to": "+14155550103", "body": "later", "send_at": later}).json()["messages"][0]["id"]
        r = c.delete(f"/v1/messages/{mid}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        again = c.delete(f"/v1/messages/{mid}")
        assert again.status_code == 409 and "cancelled" in again.json()["detail"]
        now = c.post("/v1/messages", json={"to": "+14155550104", "body": "now"}).json()["messages"][0]["id"]
        wait_status(c, now, {"sent"})
        late = c.delete(f"/v1/messages/{now}")
        assert late.status_code == 409 and "is sent" in late.json()["detail"]


def test_a_permanent_refusal_fails_and_resend_sends_it(live_server_factory: Callable[..., Any]) -> None:
    # CMS 21 would pause the only SIM (SIM health, tests/test_field_health.py): not this test's subject
    live = live_server_factory(simulate=1, settings={"health": {"sim": {"barring_cms": []}}})
    [sim] = live.simulators
    sim.fail_sends(21)  # "short message transfer rejected": permanent
    with live.client() as c:
        mid = c.post("/v1/messages", json={"to": "+14155550105", "body": "try me"}).json()["messages"][0]["id"]
        failed = wait_status(c, mid, {"failed"})
        assert failed["error"] and "21" in failed["error"]
        r = c.post(f"/v1/messages/{mid}/resend")
        assert r.status_code == 202, r.text
        sent = wait_status(c, mid, {"sent"})
        assert sent["resends"] == 1
        assert c.post(f"/v1/messages/{mid}/resend").status_code == 409


def test_401_vs_403_and_validation_names_the_field(live: Any) -> None:
    _, reader = live.app.keys.create("reader", ["read"])
    with httpx.Client(base_url=live.url, timeout=10) as anon:
        r = anon.post("/v1/messages", json={"to": "+14155550100", "body": "x"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith(PROBLEM)
        assert anon.get("/healthz").status_code == 200
    with live.client(reader) as c:
        r = c.post("/v1/messages", json={"to": "+14155550100", "body": "x"})
        assert r.status_code == 403 and "'send'" in r.json()["detail"]
        assert c.get("/v1/messages").status_code == 200
    with live.client() as c:
        r = c.post("/v1/messages", json={"to": "+14155550100", "body": "", "send_at": "2030-01-01T10:00"})
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"body", "send_at"}


def test_modems_inbound_metrics_and_health(live: Any) -> None:
    with live.client() as c:
        mid = c.post("/v1/messages", json={"to": "+14155550106", "body": "count me"}).json()["messages"][0]["id"]
        modem = wait_status(c, mid, {"sent"})["modem"]
        live.simulators[0].deliver_sms("+14155550199", "hello appliance")
        inbound = wait_until(lambda: c.get("/v1/inbound").json()["items"], what="an inbound message")
        assert inbound[0]["from"] == "+14155550199" and inbound[0]["body"] == "hello appliance"
        assert inbound[0]["to_modem"] == live.simulators[0].name and inbound[0]["complete"] is True

        modems = {m["name"]: m for m in c.get("/v1/modems").json()["modems"]}
        assert set(modems) == {s.name for s in live.simulators}
        for sim in live.simulators:
            m = modems[sim.name]
            assert m["online"] is True and m["state"] == "online"
            assert m["identity"]["imei"] == sim.imei and m["port"]
            assert m["budget"]["minute_left"] > 0
        assert modems[modem]["counters"]["parts_sent_today"] >= 1
        assert modems[modem]["counters"]["parts_sent_total"] >= 1

        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["modems_online"] == 2 and health["reasons"] == []

        text = c.get("/metrics").text
        for needle in (
            f'appliance_parts_sent_total{{modem="{modem}"}}',
            f'appliance_send_seconds_count{{modem="{modem}"}}',
            'appliance_messages{state="sent"}',
            "appliance_queue_depth",
            f'appliance_modem_online{{modem="{modem}"}} 1.0',
            f'appliance_modem_budget_left{{modem="{modem}",window="minute"}}',
            "appliance_inbound_messages_total 1.0",
            "appliance_webhook_failing_deliveries",
        ):
            assert needle in text, needle
