"""The audit trail (issue 17, item 4): every change by an API key, a web user or the command
line appears once with the right actor; ``GET /v1/audit`` and ``/audit`` filter and page;
a rolled-back change leaves no line; retention prunes lines after ``audit_days``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from appliance.audit import Action, Actor, AuditFilter, AuditLog, note, number_ref, record
from appliance.config import RetentionSection
from appliance.db import write_tx
from appliance.retention import DAY_S, Retention
from tests.utils.web_app import PageServices, signed_in_pages

CSV = "number,first_name\n+14155550181,Ann\n+14155550182,Bob\n"


@pytest.fixture
def admin_pages(db_url: str) -> Iterator[tuple[PageServices, TestClient]]:
    with signed_in_pages(db_url, role="admin") as got:
        yield got


def _csrf(client: TestClient) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/account").text)
    assert found is not None
    return found.group(1)


def _lines(services: PageServices, **where: Any) -> list[Any]:
    return AuditLog(services.queue.engine).list(AuditFilter(**where), limit=1000).items


def test_every_api_key_action_is_recorded_once_with_the_key(admin_pages: tuple[PageServices, TestClient]) -> None:
    services, client = admin_pages
    _, secret = services.keys.create("ops-key", ["admin"])
    api = {"Authorization": f"Bearer {secret}"}

    sent = client.post("/v1/messages", headers=api, json={"to": ["+14155550101", "+14155550102"], "body": "hi"})
    assert sent.status_code == 202, sent.text
    first = sent.json()["messages"][0]["id"]
    # A replay of an idempotent request changes nothing: still one send line.
    for _ in range(2):
        assert client.post("/v1/messages", headers={**api, "Idempotency-Key": "k1"},
                           json={"to": "+14155550103", "body": "once"}).status_code == 202
    assert client.delete(f"/v1/messages/{first}", headers=api).status_code == 200
    # Refused (already cancelled): rolled back, no second cancel line.
    assert client.delete(f"/v1/messages/{first}", headers=api).status_code == 409
    assert client.post("/v1/opt-outs", headers=api, json={"number": "+14155550104"}).status_code == 201
    assert client.post("/v1/opt-outs", headers=api, json={"number": "+14155550104"}).status_code == 200
    assert client.delete("/v1/opt-outs/%2B14155550104", headers=api).status_code == 204
    assert client.delete("/v1/opt-outs/%2B14155550104", headers=api).status_code == 404
    imported = client.post("/v1/contacts/import", headers={**api, "Content-Type": "text/csv"}, content=CSV)
    assert imported.status_code == 200, imported.text
    assert client.post("/v1/contacts/import?dry_run=true", headers={**api, "Content-Type": "text/csv"},
                       content=CSV).status_code == 200
    assert client.post("/v1/contacts", headers=api, json={"number": "+14155550183"}).status_code == 201
    assert client.post("/v1/contacts", headers=api, json={"number": "+14155550183"}).status_code == 409
    contact = client.get("/v1/contacts", headers=api).json()["items"][0]["id"]
    assert client.patch(f"/v1/contacts/{contact}", headers=api, json={"first_name": "Ann"}).status_code == 200
    assert client.delete(f"/v1/contacts/{contact}", headers=api).status_code == 204
    assert client.post("/v1/groups", headers=api, json={"name": "5B"}).status_code == 201
    assert client.post("/v1/groups", headers=api, json={"name": "5B"}).status_code == 409  # rolled back: no line
    assert client.patch("/v1/groups/5B", headers=api, json={"description": "class 5B"}).status_code == 200
    assert client.post("/v1/contacts", headers=api, json={"number": "+14155550184"}).status_code == 201
    assert client.post("/v1/groups/5B/members", headers=api, json={"numbers": ["+14155550184"]}).status_code == 200
    assert client.post("/v1/groups/5B/members/remove", headers=api,
                       json={"numbers": ["+14155550184"]}).status_code == 200
    assert client.delete("/v1/groups/5B", headers=api).status_code == 204
    b = client.post("/v1/broadcasts", headers=api, json={
        "template": "Hello {first_name|there}", "audience": {"numbers": ["+14155550111", "+14155550112"]},
        "start": True})
    assert b.status_code == 201, b.text
    bid = b.json()["id"]
    for verb in ("pause", "resume", "cancel"):
        assert client.post(f"/v1/broadcasts/{bid}/{verb}", headers=api).status_code == 200, verb
    assert client.get("/v1/privacy/%2B14155550181", headers=api).status_code == 200
    assert client.post("/v1/privacy/%2B14155550182/erase", headers=api).status_code == 200

    lines = _lines(services, actor="ops-key")
    counts = Counter(e.action for e in lines)
    assert counts == {
        "message.send": 2, "message.cancel": 1, "optout.add": 1, "optout.remove": 1, "contact.import": 1,
        "contact.create": 2, "contact.update": 1, "contact.erase": 1, "group.create": 1, "group.update": 1,
        "group.members_add": 1, "group.members_remove": 1, "group.delete": 1, "broadcast.start": 1, "broadcast.pause": 1, "broadcast.resume": 1,
        "broadcast.cancel": 1, "privacy.export": 1, "privacy.erase": 1,
    }
    assert {(e.actor_kind, e.address) for e in lines} == {("key", "testclient")}
    by_action = {e.action: e for e in lines}
    assert by_action["message.cancel"].target == str(first)
    assert by_action["broadcast.pause"].target == str(bid)
    assert by_action["optout.add"].target == "+1415•••0104"
    # Privacy lines name the number so staff can match it, without the number itself.
    assert by_action["privacy.erase"].target == number_ref("+14155550182")
    assert "+14155550182" not in by_action["privacy.erase"].target
    # Never a body, never a whole number.
    everything = repr([(e.target, e.detail) for e in lines])
    assert "hi" not in [e.detail.get("body") for e in lines]
    assert "+14155550101" not in everything and "Hello" not in everything


def test_web_user_actions_are_recorded_with_the_user(admin_pages: tuple[PageServices, TestClient]) -> None:
    services, client = admin_pages
    token = _csrf(client)

    def post(path: str, **data: Any) -> Any:
        return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)

    assert post("/opt-outs", number="+14155550121").status_code == 303
    assert post("/opt-outs/%2B14155550121/remove").status_code == 303
    assert post("/keys", name="web-made", scopes="send").status_code == 200
    key_id = services.keys.list()[0].id
    assert post(f"/keys/{key_id}/revoke").status_code == 303
    sent = post("/compose/send", numbers="+14155550122\n+14155550123", text="Meeting moved", kind="transactional")
    assert sent.status_code == 303, sent.text
    bid = int(sent.headers["location"].rsplit("/", 1)[1])
    assert post(f"/broadcasts/{bid}/pause").status_code == 303
    assert post(f"/broadcasts/{bid}/cancel").status_code == 303
    assert post("/contacts", number="(415) 555-0124").status_code == 303
    imported = client.post("/contacts/import", data={"csrf_token": token},
                           files={"file": ("c.csv", CSV.encode(), "text/csv")})
    assert imported.status_code == 200, imported.text
    assert post("/groups", name="Choir", numbers="").status_code == 303

    lines = _lines(services, actor="admin")
    assert Counter(e.action for e in lines) == {
        "optout.add": 1, "optout.remove": 1, "key.create": 1, "key.revoke": 1, "broadcast.start": 1,
        "broadcast.pause": 1, "broadcast.cancel": 1, "contact.import": 1, "contact.create": 1, "group.create": 1,
    }
    assert {e.actor_kind for e in lines} == {"user"}
    assert {e.address for e in lines} == {"testclient"}


def test_cli_verbs_are_recorded_as_the_os_user(tmp_path: Path, db_url: str) -> None:
    import getpass

    from appliance.cli import app
    from tests.utils.people import migrated_engine

    config = tmp_path / "appliance.toml"
    config.write_text(f'[appliance]\ndatabase_url = "{db_url}"\n')
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> int:
        return runner.invoke(app, [*args, "--config", str(config)], input=stdin).exit_code

    assert run("keys", "create", "ci", "--scope", "send") == 0
    assert run("users", "create", "zoe", "--password-stdin", stdin="a long password\n") == 0
    assert run("users", "role", "zoe", "admin") == 0
    assert run("users", "role", "nobody", "admin") != 0  # refused: rolled back, no line
    assert run("privacy", "export", "+14155550131") == 0
    assert run("retention", "run") == 0
    with migrated_engine(db_url) as engine:
        lines = AuditLog(engine).list(limit=100).items
    assert [e.action for e in reversed(lines)] == [
        "key.create", "user.create", "user.role", "privacy.export", "retention.run"]
    assert {(e.actor_kind, e.actor) for e in lines} == {("cli", getpass.getuser())}
    assert lines[2].detail == {"role": "admin"} and lines[2].target == "zoe"


def test_a_rolled_back_change_leaves_no_line(db_url: str) -> None:
    from appliance.queue import Queue

    queue = Queue(db_url)
    try:
        note(Actor.system("test"), Action.SETTINGS_CHANGE, "x")
        with pytest.raises(RuntimeError), write_tx(queue.engine):
            raise RuntimeError("the change failed")
        assert AuditLog(queue.engine).list().items == []
        # The line went with the failed transaction: the next write carries nothing.
        with write_tx(queue.engine) as tx:
            tx.now()
        assert AuditLog(queue.engine).list().items == []
        note(Actor.system("test"), Action.SETTINGS_CHANGE, "y")
        with write_tx(queue.engine) as tx:
            tx.now()
        assert [e.target for e in AuditLog(queue.engine).list().items] == ["y"]
        # A line bound to another database waits for a write there (a failed command-line
        # verb's line never lands in the next database this thread writes to).
        other = Queue(db_url.replace("appliance.db", "other.db")) if db_url.startswith("sqlite") else None
        if other is not None:
            note(Actor.cli(), Action.KEY_CREATE, "elsewhere", engine=other.engine)
            with write_tx(queue.engine) as tx:
                tx.now()
            assert [e.target for e in AuditLog(queue.engine).list().items] == ["y"]
            with write_tx(other.engine) as tx:
                tx.now()
            assert [e.target for e in AuditLog(other.engine).list().items] == ["elsewhere"]
            other.close()
    finally:
        queue.close()


def _seed(services: PageServices) -> None:
    engine = services.queue.engine
    for i in range(5):
        record(engine, Actor.user("ann"), Action.BROADCAST_START, i)
    record(engine, Actor.key("ci"), Action.MESSAGE_SEND, 99)
    record(engine, Actor.key("ci"), Action.OPTOUT_ADD, "+1415•••0001")


def test_api_filters_pages_and_refuses_bad_cursors(admin_pages: tuple[PageServices, TestClient]) -> None:
    services, client = admin_pages
    _seed(services)
    _, secret = services.keys.create("auditor", ["admin"])
    api = {"Authorization": f"Bearer {secret}"}

    def get(**params: Any) -> Any:
        got = client.get("/v1/audit", headers=api, params=params)
        assert got.status_code == 200, got.text
        return got.json()

    assert [e["target"] for e in get(actor="ann")["items"]] == ["4", "3", "2", "1", "0"]
    assert [e["action"] for e in get(actor="ci")["items"]] == ["optout.add", "message.send"]
    assert len(get(action="broadcast.")["items"]) == 5
    assert [e["target"] for e in get(action="message.send")["items"]] == ["99"]
    assert [e["action"] for e in get(target="+1415•••0001")["items"]] == ["optout.add"]
    assert get(since="2100-01-01T00:00:00Z")["items"] == []
    assert len(get(until="2100-01-01T00:00:00Z", actor="ann")["items"]) == 5
    # Pages of two, newest first, each line once.
    seen: list[str] = []
    page = get(actor="ann", limit=2)
    while True:
        seen += [e["target"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        page = get(actor="ann", limit=2, cursor=page["next_cursor"])
    assert seen == ["4", "3", "2", "1", "0"]
    for bad in ("garbage", "WyJtZXNzYWdlcyIsIDFd", "x" * 600):
        refused = client.get("/v1/audit", headers=api, params={"cursor": bad})
        assert refused.status_code == 422, refused.text
        assert "cursor" in refused.text
    assert client.get("/v1/audit", headers=api, params={"since": "yesterday"}).status_code == 422
    assert client.get("/v1/audit", headers=api, params={"limit": 0}).status_code == 422


def test_only_admins_see_the_trail(db_url: str) -> None:
    with signed_in_pages(db_url, role="staff") as (services, client):
        _, reader = services.keys.create("reader", ["read", "send"])
        assert client.get("/v1/audit", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
        assert client.get("/v1/audit").status_code == 401
        assert client.get("/audit").status_code == 403


def test_the_audit_page_filters(admin_pages: tuple[PageServices, TestClient]) -> None:
    services, client = admin_pages
    _seed(services)
    from appliance.privacy import export_number

    export_number(services.queue.engine, "+14155550141", actor=Actor.key("ci"))
    page = client.get("/audit", params={"actor": "ann", "action": "broadcast."})
    assert page.status_code == 200
    assert page.text.count("broadcast.start</code>") == 5 and "message.send</code>" not in page.text
    by_number = client.get("/audit", params={"number": "(415) 555-0141"})
    assert by_number.text.count("privacy.export</code>") == 1
    assert client.get("/audit", params={"since": "30/11/2026"}).status_code == 422
    assert client.get("/audit", params={"action": "drop.table"}).status_code == 422
    assert client.get("/audit", params={"number": "not a number"}).status_code == 422
    stale = client.get("/audit", params={"cursor": "garbage"})
    assert stale.status_code == 200 and "out of date" in stale.text


def test_retention_prunes_lines_after_audit_days(db_url: str) -> None:
    from appliance.queue import Queue

    queue = Queue(db_url)
    try:
        for i in range(5):
            record(queue.engine, Actor.system("test"), Action.RETENTION_RUN, i)
        settings = RetentionSection(audit_days=730, batch=2)
        now = time.time()
        assert Retention(queue.engine, settings, clock=lambda: now + 729 * DAY_S).run().audit == 0
        assert Retention(queue.engine, settings, clock=lambda: now + 731 * DAY_S).run(dry_run=True).audit == 5
        assert Retention(queue.engine, settings, clock=lambda: now + 731 * DAY_S).run().audit == 5
        assert AuditLog(queue.engine).list().items == []
    finally:
        queue.close()


def test_twilio_api_sends_and_cancels_are_recorded_with_the_key(admin_pages: tuple[PageServices, TestClient]) -> None:
    from appliance.twilio import TwilioCredentials

    services, client = admin_pages
    cred = TwilioCredentials(services.queue.engine).create("crm", ["send", "read"])
    base = f"/2010-04-01/Accounts/{cred.account_sid}/Messages"
    auth = (cred.account_sid, cred.auth_token)
    made = client.post(f"{base}.json", auth=auth, data={"To": "+14155550151", "Body": "hi"})
    assert made.status_code == 201, made.text
    assert client.post(f"{base}/{made.json()['sid']}.json", auth=auth, data={"Status": "canceled"}).status_code == 200
    lines = _lines(services, actor="crm")
    assert [(e.action, e.actor_kind) for e in reversed(lines)] == [("message.send", "key"), ("message.cancel", "key")]
    assert lines[1].detail["via"] == "twilio" and lines[1].detail["to"] == ["+1415•••0151"]
