"""The Twilio-compatible Messages API, driven by the official ``twilio`` SDK against a
live appliance with simulated modems (README, "Twilio-compatible API")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from appliance.db.engine import make_engine
from appliance.db.migrate import migrate
from appliance.twilio import IssuedCredential, TwilioCredentials
from appliance.webhooks import Outbox
from tests.utils.twilio_sdk import Receiver, sdk_client
from tests.utils.wait import wait_until

SIM1, SIM2 = "+14155559001", "+14155559002"
PARENT = "+14155550100"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _start(live_server_factory: Callable[..., Any], tmp_path: Path, twilio: dict[str, Any] | None = None,
           scopes: tuple[str, ...] = ("send", "read")) -> tuple[Any, IssuedCredential]:
    """A live appliance whose database already holds a Twilio credential (so the config
    can name its Account SID)."""
    url = f"sqlite:///{tmp_path / 'twilio.db'}"
    engine = make_engine(url)
    migrate(engine)
    cred = TwilioCredentials(engine).create("crm", scopes)
    engine.dispose()
    section = {"numbers": {"sim1": SIM1, "sim2": SIM2}, **(twilio or {})}
    if "sms_url" in section:
        section["account_sid"] = cred.account_sid
    server = live_server_factory(simulate=2, settings={"appliance": {"database_url": url}, "twilio": section})
    return server, cred


@pytest.fixture
def appliance(live_server_factory: Callable[..., Any], tmp_path: Path) -> tuple[Any, IssuedCredential, Any]:
    server, cred = _start(live_server_factory, tmp_path)
    return server, cred, sdk_client(server.url, cred.account_sid, cred.auth_token)


def _page_error(call: Callable[[], Any]) -> tuple[int, int]:
    """(HTTP status, Twilio code) of a list call the SDK refuses (pages raise TwilioException
    carrying the response, not TwilioRestException)."""
    import json

    with pytest.raises(TwilioException) as exc:
        call()
    response = exc.value.args[1]
    return response.status_code, json.loads(response.text)["code"]


def _sent_texts(server: Any, to: str) -> list[str]:
    return [r.text for sim in server.simulators for r in sim.sent if r.to == to]


def test_create_fetch_single_multipart_emoji(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, cred, client = appliance
    msg = client.messages.create(to="(415) 555-0100", body="School is closed tomorrow.")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    int(msg.sid[2:], 16)
    assert msg.account_sid == cred.account_sid
    assert msg.to == PARENT
    assert msg.status in ("queued", "sending", "sent")
    assert msg.num_segments == "1" and msg.num_media == "0"
    assert msg.direction == "outbound-api" and msg.api_version == "2010-04-01"
    assert msg.price is None and msg.messaging_service_sid is None
    assert msg.uri == f"/2010-04-01/Accounts/{cred.account_sid}/Messages/{msg.sid}.json"
    assert isinstance(msg.date_created, datetime)  # the SDK read the RFC 2822 date

    long_text = "Parents' evening is on Thursday at 6 pm in the main hall. " * 4
    multi = client.messages.create(to=PARENT, body=long_text, from_=SIM2)
    assert multi.num_segments == "2"
    emoji = client.messages.create(to=PARENT, body="Well done today 🎉👏", from_="sim1")
    assert emoji.num_segments == "1"

    done = wait_until(lambda: [m for m in (client.messages(s).fetch() for s in (msg.sid, multi.sid, emoji.sid))
                             if m.status == "sent"] if True else None, timeout=20,
                      what='[m for m in (client.messages(s).fetch() for s i…')
    wait_until(lambda: len([m for m in (client.messages(s).fetch() for s in (msg.sid, multi.sid, emoji.sid))
                          if m.status == "sent"]) == 3, timeout=20,
               what='len([m for m in (client.messages(s).fetch() for…')
    assert done
    fetched = client.messages(multi.sid).fetch()
    assert fetched.from_ == SIM2 and fetched.date_sent is not None and fetched.error_code is None
    assert client.messages(emoji.sid).fetch().from_ == SIM1
    texts = _sent_texts(server, PARENT)
    assert "School is closed tomorrow." in texts
    assert "Well done today 🎉👏" in texts
    sim2_parts = [r.text for r in server.simulators[1].sent if r.to == PARENT]
    assert "".join(sim2_parts) == long_text


def test_opted_out_recipient_is_refused_21610(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, _, client = appliance
    server.app.queue.opt_out(PARENT, source="test")
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to=PARENT, body="hello")
    assert exc.value.code == 21610 and exc.value.status == 400
    assert server.app.queue.list(to=PARENT).items == []  # as on Twilio: no message was made


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "not a number", "body": "hi"}, 21211),
        ({"to": "+1 415 555", "body": "hi"}, 21211),
        ({"to": PARENT, "body": ""}, 21602),
        ({"to": PARENT, "body": "x" * 1601}, 21617),
        ({"to": PARENT, "body": "€" * 800}, 21617),  # 800 characters, but 11 parts (GSM-7 escapes)
        ({"to": PARENT, "body": "hi", "from_": "+14155551234"}, 21606),
        ({"to": PARENT, "body": "hi", "from_": "sim9"}, 21606),
        ({"to": PARENT, "body": "hi", "validity_period": 0}, 90007),
        ({"to": PARENT, "body": "hi", "status_callback": "ftp://example.org/x"}, 21609),
        ({"to": PARENT, "body": "hi", "media_url": ["http://example.org/a.png"]}, 21620),
    ],
)
def test_bad_fields_get_twilio_codes(appliance: tuple[Any, IssuedCredential, Any], fields: dict[str, Any],
                                     code: int) -> None:
    _, _, client = appliance
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(**fields)
    assert exc.value.code == code and exc.value.status == 400


def test_auth_wrong_other_account_and_api_key(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, cred, _ = appliance
    wrong = sdk_client(server.url, cred.account_sid, "0" * 32)
    with pytest.raises(TwilioRestException) as exc:
        wrong.messages.create(to=PARENT, body="hi")
    assert exc.value.status == 401 and exc.value.code == 20003
    assert _page_error(wrong.messages.list) == (401, 20003)

    # Right credentials, another account's SID in the path.
    other = TwilioCredentials(server.app.queue.engine).create("other", ["send", "read"])
    cross = sdk_client(server.url, cred.account_sid, cred.auth_token, account_sid=other.account_sid)
    assert _page_error(cross.messages.list) == (401, 20003)

    # API key auth, as the SDKs send it: SK… + secret, the Account SID in the path.
    keyed = sdk_client(server.url, cred.api_key_sid, cred.api_key_secret, account_sid=cred.account_sid)
    msg = keyed.messages.create(to=PARENT, body="via an API key")
    assert msg.account_sid == cred.account_sid
    # The other account never sees it.
    theirs = sdk_client(server.url, other.account_sid, other.auth_token)
    with pytest.raises(TwilioRestException) as exc:
        theirs.messages(msg.sid).fetch()
    assert exc.value.status == 404 and exc.value.code == 20404

    # No Authorization at all, and garbage in it: 401 with Twilio's JSON.
    url = f"{server.url}/2010-04-01/Accounts/{cred.account_sid}/Messages.json"
    for headers in ({}, {"Authorization": "Basic !!!"}, {"Authorization": f"Bearer {server.admin_key}"}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == 20003, headers
        assert r.json()["more_info"].endswith("/20003")

    # A revoked key's credential stops working.
    server.app.keys.revoke(cred.key_id)
    assert _page_error(sdk_client(server.url, cred.account_sid, cred.auth_token).messages.list) == (401, 20003)


def test_read_only_credential_cannot_send(live_server_factory: Callable[..., Any], tmp_path: Path) -> None:
    server, cred = _start(live_server_factory, tmp_path, scopes=("read",))
    client = sdk_client(server.url, cred.account_sid, cred.auth_token)
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to=PARENT, body="hi")
    assert exc.value.status == 403
    assert client.messages.list() == []


def test_list_and_stream_across_pages(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, _, client = appliance
    other = "+14155550101"
    sids = [client.messages.create(to=PARENT if i % 3 else other, body=f"note {i}").sid for i in range(8)]
    server.app.queue.enqueue([PARENT], "sent through /v1, not Twilio")  # not listed
    listed = client.messages.list(page_size=3)
    assert [m.sid for m in listed] == sids[::-1]
    streamed = list(client.messages.stream(page_size=2))
    assert [m.sid for m in streamed] == sids[::-1]
    assert [m.sid for m in client.messages.list(limit=5, page_size=2)] == sids[::-1][:5]
    to_other = client.messages.list(to=other, page_size=2)
    assert [m.sid for m in to_other] == [s for i, s in enumerate(sids) if i % 3 == 0][::-1]

    page = client.messages.page(page_size=3)
    assert len(list(page)) == 3 and page.next_page_url is not None and page.previous_page_url is None
    assert page.next_page_url.startswith(server.url + "/2010-04-01/")
    second = page.next_page()
    assert [m.sid for m in second] == sids[::-1][3:6]
    back = second.previous_page()
    assert [m.sid for m in back] == sids[::-1][:3]
    raw = httpx.get(page.next_page_url, auth=(client.username, client.password)).json()
    assert raw["page"] == 1 and raw["page_size"] == 3 and raw["start"] == 3 and raw["end"] == 5
    assert raw["first_page_uri"].startswith(f"/2010-04-01/Accounts/{client.account_sid}/Messages.json?")

    today = datetime.now(UTC).date()
    assert len(client.messages.list(date_sent=datetime(today.year, today.month, today.day))) == 8
    assert client.messages.list(date_sent_before=datetime.now(UTC) - timedelta(days=2)) == []
    assert len(client.messages.list(date_sent_after=datetime.now(UTC) - timedelta(days=1))) == 8
    wait_until(lambda: all(m.status == "sent" for m in client.messages.list()), timeout=20,
               what='all(m.status == "sent" for m in client.messages…')
    from_sim1 = client.messages.list(from_=SIM1)
    from_sim2 = client.messages.list(from_="sim2")
    assert len(from_sim1) + len(from_sim2) == 8
    assert all(m.from_ == SIM1 for m in from_sim1)


def test_cancel_redact_delete(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    _, _, client = appliance
    later = datetime.now(UTC) + timedelta(days=1)
    scheduled = client.messages.create(to=PARENT, body="Reminder: trip tomorrow", send_at=later,
                                       schedule_type="fixed", messaging_service_sid="MG" + "0" * 32)
    assert scheduled.status == "scheduled"
    canceled = client.messages(scheduled.sid).update(status="canceled")
    assert canceled.status == "canceled"

    sent = client.messages.create(to=PARENT, body="Private: results are in")
    wait_until(lambda: client.messages(sent.sid).fetch().status == "sent", timeout=20,
               what='client.messages(sent.sid).fetch().status == "sent"')
    with pytest.raises(TwilioRestException) as exc:
        client.messages(sent.sid).update(status="canceled")
    assert exc.value.code == 30409
    redacted = client.messages(sent.sid).update(body="")
    assert redacted.body == "" and redacted.status == "sent"

    pending = client.messages.create(to=PARENT, body="later", send_at=later, schedule_type="fixed")
    with pytest.raises(TwilioRestException) as exc:
        client.messages(pending.sid).delete()
    assert exc.value.code == 20009
    assert client.messages(sent.sid).delete() is True
    with pytest.raises(TwilioRestException) as exc:
        client.messages(sent.sid).fetch()
    assert exc.value.status == 404 and exc.value.code == 20404
    with pytest.raises(TwilioRestException) as exc:
        client.messages("SM" + "0" * 32).fetch()
    assert exc.value.code == 20404


def test_ignored_fields_get_a_warning_header(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, cred, _ = appliance
    r = httpx.post(f"{server.url}/2010-04-01/Accounts/{cred.account_sid}/Messages.json",
                   auth=(cred.account_sid, cred.auth_token),
                   data={"To": PARENT, "Body": "hi", "MessagingServiceSid": "MG" + "1" * 32, "ShortenUrls": "true"})
    assert r.status_code == 201
    assert "MessagingServiceSid" in r.headers["X-Appliance-Twilio-Warning"]
    assert "ShortenUrls" in r.headers["X-Appliance-Twilio-Warning"]
    assert r.json()["messaging_service_sid"] is None


def test_status_callbacks_are_signed_and_retried(appliance: tuple[Any, IssuedCredential, Any],
                                                 receiver: Receiver) -> None:
    server, cred, client = appliance
    validator = RequestValidator(cred.auth_token)
    receiver.fail_next = 1  # the first attempt fails: the outbox retries it
    callback = f"{receiver.url}/status?school=north"
    msg = client.messages.create(to=PARENT, body="Bus is late", status_callback=callback)
    later = datetime.now(UTC) + timedelta(days=1)
    doomed = client.messages.create(to=PARENT, body="never", status_callback=callback, send_at=later,
                                    schedule_type="fixed")
    client.messages(doomed.sid).update(status="canceled")
    got = wait_until(lambda: len(receiver.requests) >= 2 and receiver.requests, timeout=30,
                     what='len(receiver.requests) >= 2 and receiver.requests')
    by_sid = {r.params["MessageSid"]: r for r in got}
    assert by_sid[msg.sid].params["MessageStatus"] == "sent"
    assert by_sid[doomed.sid].params["MessageStatus"] == "canceled"
    for r in got:
        assert validator.validate(r.url, r.params, r.headers["X-Twilio-Signature"]), r
        assert r.params["AccountSid"] == cred.account_sid and r.params["ApiVersion"] == "2010-04-01"
        assert r.params["To"] == PARENT
        assert r.path.startswith("/status?school=north")
    assert by_sid[msg.sid].params["From"] in (SIM1, SIM2)

    # The network's status reports: delivered, and undelivered (a permanent error, 0x41).
    bounced = client.messages.create(to="+14155550101", body="Bus is late", status_callback=callback)
    wait_until(lambda: client.messages(bounced.sid).fetch().status == "sent", timeout=20,
               what='client.messages(bounced.sid).fetch().status == …')
    for sid, to, status in ((msg.sid, PARENT, 0), (bounced.sid, "+14155550101", 0x41)):
        record = next(r for sim in server.simulators for r in sim.sent if r.to == to and r.text == "Bus is late")
        sim = next(s for s in server.simulators if s.name == record.modem)
        sim.send_status_report(record.mr, status=status, recipient=to)
    finals = wait_until(lambda: {r.params["MessageSid"]: r.params for r in receiver.requests
                               if r.params["MessageStatus"] in ("delivered", "undelivered")}
                      if len([r for r in receiver.requests if r.params["MessageStatus"] in ("delivered", "undelivered")]) == 2
                      else None, timeout=30, what='{r.params["MessageSid"]: r.params for r in rece…')
    assert finals[msg.sid]["MessageStatus"] == "delivered" and "ErrorCode" not in finals[msg.sid]
    assert finals[bounced.sid]["MessageStatus"] == "undelivered" and finals[bounced.sid]["ErrorCode"] == "30007"
    fetched = client.messages(bounced.sid).fetch()
    assert fetched.status == "undelivered" and fetched.error_code == 30007
    assert client.messages(msg.sid).fetch().status == "delivered"
    for r in receiver.requests:
        assert validator.validate(r.url, r.params, r.headers["X-Twilio-Signature"])
    assert not validator.validate(got[0].url, {**got[0].params, "MessageStatus": "delivered"},
                                  got[0].headers["X-Twilio-Signature"])


def test_inbound_webhook_and_twiml_reply(live_server_factory: Callable[..., Any], tmp_path: Path,
                                         receiver: Receiver) -> None:
    server, cred = _start(live_server_factory, tmp_path, twilio={"sms_url": f"{receiver.url}/sms"})
    validator = RequestValidator(cred.auth_token)
    reply = MessagingResponse()
    reply.message("Thanks, we got your message.")
    receiver.reply = str(reply)
    sim = server.simulators[0]
    sim.deliver_sms(PARENT, "Ana will be late today")
    got = wait_until(lambda: receiver.requests, timeout=20, what='receiver.requests')[0]
    assert validator.validate(got.url, got.params, got.headers["X-Twilio-Signature"])
    p = got.params
    assert p["From"] == PARENT and p["To"] == SIM1 and p["Body"] == "Ana will be late today"
    assert p["AccountSid"] == cred.account_sid and p["SmsStatus"] == "received"
    assert p["NumMedia"] == "0" and p["NumSegments"] == "1" and p["MessageSid"].startswith("SM")
    assert p["ApiVersion"] == "2010-04-01"
    wait_until(lambda: "Thanks, we got your message." in [r.text for r in sim.sent if r.to == PARENT], timeout=20,
               what='"Thanks, we got your message." in [r.text for r…')

    # STOP is the appliance's: forwarded (marked), never answered from TwiML.
    sim.deliver_sms(PARENT, "stop")
    stop = wait_until(lambda: len(receiver.requests) >= 2 and receiver.requests[1], timeout=20,
                      what='len(receiver.requests) >= 2 and receiver.reques…')
    assert stop.params["OptOutType"] == "STOP"
    assert validator.validate(stop.url, stop.params, stop.headers["X-Twilio-Signature"])
    outbox = Outbox(server.app.queue.engine)
    wait_until(lambda: not outbox.entries(pending=True), timeout=20,
               what='not outbox.entries(pending=True)')  # its TwiML answer was read
    wait_until(lambda: any(r.to == PARENT and "Thanks" not in r.text for r in sim.sent), timeout=20,
               what='any(r.to == PARENT and "Thanks" not in r.text f…')
    thanks = [m for m in server.app.queue.list(to=PARENT, limit=50).items if m.body.startswith("Thanks")]
    assert len(thanks) == 1

    # TwiML that cannot be read: counted, logged, not retried.
    receiver.reply = "<Response><Dial>+14155550199</Dial></Response>"
    sim.deliver_sms("+14155550102", "hello?")
    wait_until(lambda: server.app.twilio.bad_twiml == 1, timeout=20, what='server.app.twilio.bad_twiml == 1')
    assert len([r for r in receiver.requests if r.params["From"] == "+14155550102"]) == 1
    metrics = server.client().get("/metrics").text
    assert "appliance_twilio_bad_twiml_total 1.0" in metrics


def test_idempotency_token_and_odd_requests(appliance: tuple[Any, IssuedCredential, Any]) -> None:
    server, cred, _ = appliance
    url = f"{server.url}/2010-04-01/Accounts/{cred.account_sid}/Messages.json"
    auth = (cred.account_sid, cred.auth_token)
    token = {"I-Twilio-Idempotency-Token": "retry-1"}
    first = httpx.post(url, auth=auth, headers=token, data={"To": PARENT, "Body": "once"})
    again = httpx.post(url, auth=auth, headers=token, data={"To": PARENT, "Body": "once"})
    assert first.status_code == again.status_code == 201
    assert first.json()["sid"] == again.json()["sid"]
    other = httpx.post(url, auth=auth, headers=token, data={"To": PARENT, "Body": "something else"})
    assert other.status_code == 409 and other.json()["code"] == 20001
    assert len([m for m in server.app.queue.list(to=PARENT, limit=10).items if m.body == "once"]) == 1

    odd = httpx.post(url, auth=auth, content="To=%2B14155550100&Body=hi&%F0%9F%98%80=1&X%0D%0AY=2&Tag=a",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert odd.status_code == 201
    assert odd.headers["X-Appliance-Twilio-Warning"] == "ignored: Tag, 2 other field(s)"
    for bad in ("http://[::1", "http://host:port/x", "javascript:alert(1)"):
        r = httpx.post(url, auth=auth, data={"To": PARENT, "Body": "hi", "StatusCallback": bad})
        assert r.status_code == 400 and r.json()["code"] == 21609, bad
    as_json = httpx.post(url, auth=auth, json={"To": PARENT, "Body": "hi"})
    assert as_json.status_code == 400 and as_json.json()["code"] == 20001
    missing_to = httpx.post(url, auth=auth, data={"Body": "hi"})
    assert missing_to.status_code == 400 and missing_to.json()["code"] == 21604
    for params in ({"PageSize": "0"}, {"PageSize": "ten"}, {"Page": "-1"}, {"PageToken": "PAx"},
                   {"DateSent": "yesterday"}, {"To": "hello"}):
        r = httpx.get(url, auth=auth, params=params)
        assert r.status_code == 400 and r.json()["code"] in (20001, 21211), params
        assert r.json()["message"]
    r = httpx.post(url.replace("Messages.json", "Messages/SMnope.json"), auth=auth, data={"Status": "sent"})
    assert r.status_code == 400 and "Status" in r.json()["message"]
    r = httpx.delete(url.replace("Messages.json", "Messages/SMnope.json"), auth=auth)
    assert r.status_code == 404 and r.json()["code"] == 20404
