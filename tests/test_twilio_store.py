"""The Twilio side's data and webhook service on both engines: credentials, SIDs, paging,
redaction, status callbacks and inbound webhooks with TwiML replies (through an httpx
mock transport; tests/test_twilio_api.py drives the same over HTTP with the SDK)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from appliance.config import Settings
from appliance.db import twilio as twilio_db
from appliance.db.engine import read_tx, write_tx
from appliance.queue import Queue
from appliance.twilio import TwilioCredentials, TwilioService, parse_twiml, twilio_status
from appliance.webhooks import Outbox

PARENT = "+14155550100"


def test_credentials_authenticate_and_revoke(db_url: str) -> None:
    queue = Queue(db_url)
    creds = TwilioCredentials(queue.engine)
    issued = creds.create("crm", ["send"])
    assert issued.account_sid.startswith("AC") and len(issued.account_sid) == 34
    assert len(issued.auth_token) == 32 and issued.api_key_sid.startswith("SK")
    assert creds.authenticate(issued.account_sid, issued.auth_token).scopes == frozenset({"send"})
    assert creds.authenticate(issued.api_key_sid, issued.api_key_secret).account_sid == issued.account_sid
    assert creds.authenticate(issued.account_sid, issued.api_key_secret) is None
    assert creds.authenticate(issued.api_key_sid, issued.auth_token) is None
    assert creds.authenticate("AC" + "0" * 32, issued.auth_token) is None
    assert creds.authenticate("sk_whatever", "x") is None
    with read_tx(queue.engine) as tx:  # the token is kept for signing; never only as a digest
        row = twilio_db.find_credential(tx, account_sid=issued.account_sid)
    assert row is not None and row.token_digest != issued.auth_token
    from appliance.api.keys import ApiKeys

    ApiKeys(queue.engine).revoke(issued.key_id)
    assert creds.authenticate(issued.account_sid, issued.auth_token) is None
    queue.close()


def _send(queue: Queue, account_sid: str, body: str, *, callback: str | None = None, sid: str | None = None,
          **kwargs: Any) -> int:
    sid = sid or f"SM{time.time_ns():032x}"[-34:].replace(" ", "0")
    views = queue.enqueue([PARENT], body, within=lambda tx, ids: twilio_db.insert_message(
        tx, ids[0], sid="SM" + sid[2:], account_sid=account_sid, status_callback=callback, now=time.time()),
        **kwargs)
    return views[0].id


def test_messages_paging_redact_delete(db_url: str) -> None:
    queue = Queue(db_url)
    ids = [_send(queue, "AC1", f"m{i}", sid=f"SM{i:032x}") for i in range(5)]
    _send(queue, "AC2", "theirs", sid=f"SM{99:032x}")
    with read_tx(queue.engine) as tx:
        first = twilio_db.list_messages(tx, "AC1", limit=2)
        second = twilio_db.list_messages(tx, "AC1", before_id=first[-1].id, limit=2)
        back = twilio_db.list_messages(tx, "AC1", after_id=second[0].id, limit=2)
        assert twilio_db.get_message(tx, "AC2", f"SM{0:032x}") is None
        row = twilio_db.get_message(tx, "AC1", f"SM{0:032x}")
    assert [r.id for r in first] == ids[::-1][:2]
    assert [r.id for r in second] == ids[::-1][2:4]
    assert [r.id for r in back] == [r.id for r in first]
    assert row is not None and twilio_status(row, time.time())[0] == "queued"
    with write_tx(queue.engine) as tx:
        assert not twilio_db.redact_body(tx, ids[0], time.time())  # still queued
        assert not twilio_db.delete_message(tx, ids[0], time.time())
    queue.cancel(ids[0])
    with write_tx(queue.engine) as tx:
        assert twilio_db.delete_message(tx, ids[0], time.time())
    with read_tx(queue.engine) as tx:
        assert twilio_db.get_message(tx, "AC1", f"SM{0:032x}") is None
        assert len(twilio_db.list_messages(tx, "AC1", limit=10)) == 4
    assert queue.get(ids[0]).body == ""
    queue.close()


class _Hooks:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = ""
        self.fail = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            self.fail -= 1
            return httpx.Response(503)
        self.requests.append(request)
        return httpx.Response(200, text=self.reply, headers={"Content-Type": "text/xml"})


def test_callbacks_and_inbound_through_the_outbox(db_url: str) -> None:
    queue = Queue(db_url)
    cred = TwilioCredentials(queue.engine).create("crm", ["send", "read"])
    settings = Settings.model_validate({"appliance": {"database_url": db_url}, "twilio": {
        "sms_url": "http://hooks.example/sms?school=1", "account_sid": cred.account_sid,
        "numbers": {"m1": "+14155559001"}}})
    hooks = _Hooks()
    service = TwilioService(queue, settings, node="n1", transport=httpx.MockTransport(hooks), backoff_base_s=0.0)
    validator = RequestValidator(cred.auth_token)

    message_id = _send(queue, cred.account_sid, "hi", callback="http://hooks.example/status")
    queue.cancel(message_id)
    hooks.fail = 1
    assert service.pump() == 1
    assert service.deliver_due() == 0  # 503: retried
    assert service.deliver_due() == 1
    (status,) = hooks.requests
    params = dict(parse_qsl(status.content.decode(), keep_blank_values=True))
    assert params["MessageStatus"] == "canceled" and params["To"] == PARENT
    assert validator.validate(str(status.url), params, status.headers["X-Twilio-Signature"])

    reply = MessagingResponse()
    reply.message("Got it")
    hooks.reply = str(reply)
    queue.upsert_modem("m1")
    queue.store_inbound("m1", PARENT, "Is school open?", digest="d1", handled=True)
    queue.store_inbound("m1", PARENT, "STOP", digest="d2", keyword="stop", handled=True)
    assert service.pump() == 2
    assert service.deliver_due() == 2
    inbound = [dict(parse_qsl(r.content.decode(), keep_blank_values=True)) for r in hooks.requests[1:]]
    assert [p["Body"] for p in inbound] == ["Is school open?", "STOP"]
    assert inbound[0]["To"] == "+14155559001" and inbound[1]["OptOutType"] == "STOP"
    for r, p in zip(hooks.requests[1:], inbound, strict=True):
        assert validator.validate(str(r.url), p, r.headers["X-Twilio-Signature"])
    replies = [m for m in queue.list(to=PARENT, limit=10).items if m.body == "Got it"]
    assert len(replies) == 1 and replies[0].modem == "m1"  # none for the STOP
    assert not Outbox(queue.engine).entries(pending=True)

    hooks.reply = "<Response><Message>unclosed"
    queue.store_inbound("m1", PARENT, "again", digest="d3", handled=True)
    service.pump()
    assert service.deliver_due() == 1 and service.bad_twiml == 1
    assert not Outbox(queue.engine).entries(pending=True)  # not retried
    queue.close()


@pytest.mark.parametrize(("twiml", "texts"), [
    ("", []),
    ("<Response/>", []),
    ("<Response><Message>a</Message><Message><Body>b</Body></Message></Response>", ["a", "b"]),
])
def test_parse_twiml(twiml: str, texts: list[str]) -> None:
    assert parse_twiml(twiml) == texts


@pytest.mark.parametrize("twiml", [
    "not xml", "<Reply><Message>a</Message></Reply>", "<Response><Say>hi</Say></Response>",
    '<!DOCTYPE x [<!ENTITY a "b">]><Response><Message>&a;</Message></Response>',
    "<Response><Message><Media>http://x/a.png</Media></Message></Response>",
])
def test_bad_twiml(twiml: str) -> None:
    from appliance.twilio.service import BadTwiml

    with pytest.raises(BadTwiml):
        parse_twiml(twiml)


def test_cli_keys_create_twilio(tmp_path: Any, sqlite_url: str) -> None:
    from typer.testing import CliRunner

    from appliance.cli import app

    config = tmp_path / "appliance.toml"
    config.write_text(f'[appliance]\ndatabase_url = "{sqlite_url}"\n')
    result = CliRunner().invoke(app, ["keys", "create", "office", "--twilio", "--config", str(config)])
    assert result.exit_code == 0, result.output
    names = ("Account SID", "Auth Token", "API key SID", "API key secret")
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in result.stdout.splitlines())
              if k in names}
    assert len(fields) == 4
    queue = Queue(sqlite_url)
    creds = TwilioCredentials(queue.engine)
    cred = creds.authenticate(fields["Account SID"], fields["Auth Token"])
    assert cred is not None and cred.scopes == frozenset({"send", "read"}) and cred.key_name == "office"
    assert creds.authenticate(fields["API key SID"], fields["API key secret"]) is not None
    listed = CliRunner().invoke(app, ["keys", "list", "--json", "--config", str(config)])
    assert [k["name"] for k in json.loads(listed.stdout)] == ["office"]
    bad = CliRunner().invoke(app, ["keys", "create", "x", "--twilio", "--scope", "root", "--config", str(config)])
    assert bad.exit_code == 1 and "unknown scope" in bad.output
    queue.close()


@pytest.mark.parametrize(("status", "send_at", "undelivered", "expected"), [
    ("queued", None, False, ("queued", None)),
    ("queued", 4e9, False, ("scheduled", None)),
    ("sending", None, False, ("sending", None)),
    ("sent", None, False, ("sent", None)),
    ("delivered", None, False, ("delivered", None)),
    ("failed", None, True, ("undelivered", 30007)),
    ("failed", None, False, ("failed", 30008)),
    ("unknown", None, False, ("sending", 30008)),  # may have left: neither success nor failure
    ("cancelled", None, False, ("canceled", None)),
    ("suppressed", None, False, ("failed", 21610)),
    ("expired", None, False, ("failed", 30036)),
])
def test_state_mapping(status: str, send_at: float | None, undelivered: bool,
                       expected: tuple[str, int | None]) -> None:
    row = twilio_db.TwilioMessageRow(
        id=1, sid="SM" + "0" * 32, account_sid="AC" + "0" * 32, status_callback=None, recipient=PARENT, body="x",
        status=status, parts=1, modem=None, created_at=0.0, updated_at=0.0, send_at=send_at, sent_at=None,
        error=None, undelivered=undelivered)
    got = twilio_status(row, time.time())
    assert got[:2] == expected
    if status == "unknown":
        assert "may have been sent" in (got[2] or "")
