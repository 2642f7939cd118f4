"""Approval of big sends through the API (issue 17, item 5): a key without the admin scope
starting a broadcast to more than ``[broadcasts] approval_over`` recipients gets it back
``awaiting_approval`` with nothing queued; another admin approves (it starts) or rejects
(cancelled); nobody approves their own; both people are in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import ApiKeys, create_app
from appliance.audit import AuditFilter, AuditLog
from appliance.config import Settings
from appliance.queue import Dispatcher, Queue
from tests.utils.services import ApiServices

NUMBERS = [f"+1415555{i:04d}" for i in range(200, 205)]  # five recipients; approval over three


class Api:
    def __init__(self, client: TestClient, services: ApiServices) -> None:
        self.client = client
        self.services = services

    def key(self, name: str, *scopes: str) -> dict[str, str]:
        _, secret = self.services.keys.create(name, list(scopes))
        return {"Authorization": f"Bearer {secret}"}

    def post(self, path: str, key: dict[str, str], json: Any = None) -> Any:
        return self.client.post(path, headers=key, json=json)

    def start(self, key: dict[str, str], numbers: list[str] = NUMBERS) -> dict[str, Any]:
        made = self.post("/v1/broadcasts", key, {"template": "Hello", "audience": {"numbers": numbers},
                                                 "start": True})
        assert made.status_code == 201, made.text
        return made.json()


@contextmanager
def _api(db_url: str, approval_over: int) -> Iterator[Api]:
    settings = Settings.model_validate({"appliance": {"database_url": db_url, "default_region": "US"},
                                        "broadcasts": {"approval_over": approval_over}})
    queue = Queue(db_url)
    services = ApiServices(settings, queue, ApiKeys(queue.engine), Dispatcher(queue, []))
    try:
        with TestClient(create_app(services)) as client:
            yield Api(client, services)
    finally:
        queue.close()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with _api(db_url, 3) as got:
        yield got


def _trail(api: Api, broadcast_id: int) -> list[tuple[str, str]]:
    lines = AuditLog(api.services.queue.engine).list(AuditFilter(target=str(broadcast_id))).items
    return [(e.action, e.actor) for e in reversed(lines)]


def test_a_big_send_waits_for_another_admin(api: Api) -> None:
    staff = api.key("staff-app", "send")
    b = api.start(staff)
    bid = b["id"]
    assert b["status"] == "awaiting_approval" and b["requested_by"] == "api:staff-app"
    assert b["stats"]["total"] == 0  # nothing queued while it waits: no node can send any of it
    assert api.services.queue.claim("any-node-sim", max_parts=10) is None
    # Not startable around the approval, not by its own key (no admin scope).
    assert api.post(f"/v1/broadcasts/{bid}/start", staff).status_code == 409
    assert api.post(f"/v1/broadcasts/{bid}/pause", staff).status_code == 409
    assert api.post(f"/v1/broadcasts/{bid}/approve", staff).status_code == 403
    # An admin key of the same name is the same person: refused, saying why.
    own = api.post(f"/v1/broadcasts/{bid}/approve", api.key("staff-app", "admin"))
    assert own.status_code == 403
    assert own.headers["content-type"].startswith("application/problem+json")
    assert "another admin" in own.json()["detail"]
    assert api.post(f"/v1/broadcasts/{bid}/reject", api.key("staff-app", "admin")).status_code == 403
    boss = api.key("boss", "admin")
    approved = api.post(f"/v1/broadcasts/{bid}/approve", boss)
    assert approved.status_code == 200, approved.text
    got = approved.json()
    assert got["status"] in ("running", "done") and got["reviewed_by"] == "api:boss"
    assert got["stats"]["total"] == len(NUMBERS)
    assert api.post(f"/v1/broadcasts/{bid}/approve", api.key("other", "admin")).status_code == 409
    assert _trail(api, bid) == [("broadcast.request", "staff-app"), ("broadcast.approve", "boss")]
    approve_line = AuditLog(api.services.queue.engine).list(AuditFilter(action="broadcast.approve")).items[0]
    assert approve_line.detail["requested_by"] == "api:staff-app"


def test_reject_cancels_and_small_or_admin_sends_need_no_approval(api: Api) -> None:
    staff = api.key("staff-app", "send")
    bid = api.start(staff)["id"]
    rejected = api.post(f"/v1/broadcasts/{bid}/reject", api.key("boss", "admin"))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "cancelled" and rejected.json()["stats"]["total"] == 0
    assert api.post(f"/v1/broadcasts/{bid}/approve", api.key("boss2", "admin")).status_code == 409
    assert _trail(api, bid) == [("broadcast.request", "staff-app"), ("broadcast.reject", "boss")]
    # The starter may withdraw a waiting one.
    waiting = api.start(staff)["id"]
    assert api.post(f"/v1/broadcasts/{waiting}/cancel", staff).json()["status"] == "cancelled"
    # Three recipients (not more than approval_over) and admin keys start at once.
    assert api.start(staff, NUMBERS[:3])["status"] == "running"
    assert api.start(api.key("root", "admin"))["status"] == "running"
    assert api.post("/v1/broadcasts/999999/approve", api.key("boss3", "admin")).status_code == 404
    assert api.post("/v1/broadcasts/abc/reject", api.key("boss4", "admin")).status_code == 404  # like /start


def test_approval_over_0_turns_approval_off(db_url: str) -> None:
    with _api(db_url, 0) as api:
        assert api.start(api.key("staff-app", "send"))["status"] == "running"


def test_on_the_pages_nobody_approves_their_own(db_url: str) -> None:
    """A staff member's compose to 201 waits; promoted to admin meanwhile, they still cannot
    approve or reject it (403 page); their staff colleagues see no buttons."""
    import re

    from tests.utils.web_app import signed_in_pages

    numbers = "\n".join(f"+1415555{i:04d}" for i in range(7000, 7201))
    with signed_in_pages(db_url, role="staff") as (services, client):
        from appliance.web import Users

        token = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/account").text)
        assert token is not None
        csrf = token.group(1)
        sent = client.post("/compose/send", data={"csrf_token": csrf, "numbers": numbers, "text": "Trip cancelled",
                                                  "kind": "transactional"}, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        where = sent.headers["location"]
        shown = client.get(where).text
        assert "Waiting for approval" in shown and "Approve and send" not in shown
        assert client.post(f"{where}/approve", data={"csrf_token": csrf}).status_code == 403  # staff: admins only
        Users(services.queue.engine).set_role("staff", "admin")
        shown = client.get(where).text
        assert "You asked for it" in shown and "Approve and send" not in shown
        for verb in ("approve", "reject"):
            refused = client.post(f"{where}/{verb}", data={"csrf_token": csrf})
            assert refused.status_code == 403 and "another admin must" in refused.text.lower()
        api = {"Authorization": f"Bearer {services.keys.create('reader', ['read'])[1]}"}
        assert client.get(f"/v1{where}", headers=api).json()["status"] == "awaiting_approval"
