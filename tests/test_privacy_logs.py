"""No personal data in the logs: a full flow through a live appliance (sends to two numbers,
a reply, a STOP, a privacy export and erase, a retention run) logged at DEBUG, then the
captured log is searched for the numbers' digits and the texts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.utils.wait import wait_until

ANN, BOB = "+14156410011", "+14156410012"
BODIES = ("Your appointment is Tuesday 3pm with Dr Alvarez", "Lab results ready: call Ward 7 nurse desk")
REPLY = "Thanks I will come Tuesday afternoon"


def test_a_full_flow_logs_no_numbers_and_no_bodies(live_server_factory: Callable[..., Any],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="appliance")
    live = live_server_factory(simulate=2)
    c = live.client()
    for number, body in zip((ANN, BOB), BODIES):
        r = c.post("/v1/messages", json={"to": [number], "body": body})
        assert r.status_code == 202, r.text
    wait_until(lambda: {m["status"] for m in c.get("/v1/messages").json()["items"]} <= {"sent", "delivered"}
          and len(c.get("/v1/messages").json()["items"]) == 2, what='{m["status"] for m in c.get("/v1/messages").jso…')
    live.simulators[0].deliver_sms(ANN, REPLY)
    live.simulators[1].deliver_sms(BOB, "STOP")
    wait_until(lambda: c.get("/v1/opt-outs").json()["items"], what='c.get("/v1/opt-outs").json()["items"]')
    wait_until(lambda: len(c.get("/v1/inbound").json()["items"]) == 2,
               what='len(c.get("/v1/inbound").json()["items"]) == 2')
    assert c.post(f"/v1/messages", json={"to": [BOB], "body": BODIES[1]}).json()["messages"][0]["status"] == "suppressed"
    exported = c.get("/v1/privacy/+1 (415) 641-0011")
    assert exported.status_code == 200, exported.text
    assert [m["body"] for m in exported.json()["messages"]] == [BODIES[0]]
    assert [m["body"] for m in exported.json()["inbound"]] == [REPLY]
    _, reader = live.app.keys.create("reader", ["read"])
    assert live.client(reader).get("/v1/privacy/%2B14156410011").status_code == 403
    assert live.client(reader).post("/v1/privacy/%2B14156410011/erase").status_code == 403
    bad = c.post("/v1/privacy/not-a-number/erase")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "number"
    erased = c.post("/v1/privacy/%2B14156410012/erase")
    assert erased.status_code == 200, erased.text
    assert erased.json()["still_opted_out"] is True and erased.json()["inbound_bodies"] == 1
    shown = c.get("/v1/messages", params={"to": BOB}).json()["items"]
    assert {(m["body"], m["redacted"]) for m in shown} == {("", True)}
    assert c.get(f"/v1/messages/{shown[0]['id']}").json()["redacted"] is True
    assert {(m["body"], m["redacted"]) for m in c.get("/v1/messages", params={"to": ANN}).json()["items"]} == {
        (BODIES[0], False)}
    live.app.retention.run()
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert len(caplog.records) > 20  # DEBUG was on: the modems' traffic was logged
    for secret in ("4156410011", "4156410012", *BODIES, REPLY, "Alvarez", "Tuesday"):
        assert secret not in text, f"{secret!r} is in the log:\n" + "\n".join(
            line for line in text.splitlines() if secret in line)


@pytest.mark.parametrize(("number", "shown"), [
    ("+14156410011", "+1415•••0011"),
    ("+447700900123", "+44770•••0123"),
    ("+254712345678", "+25471•••5678"),
    ("+3312345", "+•••2345"),
    ("0821234567", "0•••67"),  # not E.164: only the ends
    ("72404", "72404"),  # a short code is no one's number
    ("", "-"),
    (None, "-"),
])
def test_mask_keeps_the_country_code_and_the_last_four_digits(number: str | None, shown: str) -> None:
    from appliance.numbers import mask

    assert mask(number) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("jane.doe@school.lan", "j•••@school.lan"),
    ("+14155550100@sms.school.lan", "+1415•••0100@sms.school.lan"),
    ("5.7.1 The sender address <eve@example.com> is not allowed", "5.7.1 The sender address <e•••@example.com> is not allowed"),
    ("SMTPRecipientsRefused: {'staff@school.lan': (550, b'no')}", "SMTPRecipientsRefused: {'s•••@school.lan': (550, b'no')}"),
    ("no address here @ all", "no address here @ all"),
])
def test_mask_emails_hides_the_local_part(text: str, shown: str) -> None:
    from appliance.numbers import mask_emails

    assert mask_emails(text) == shown


class _RefusingSink:
    """A relay that refuses every recipient (its answer names the address)."""

    def __init__(self) -> None:
        from tests.utils.email import free_port

        self.port = free_port()
        self._controller: Any = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return f"550 5.1.1 <{address}>: no such user here"

    def __enter__(self) -> "_RefusingSink":
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._controller.stop()


def test_email_log_lines_mask_addresses(live_server_factory: Callable[..., Any],
                                        caplog: pytest.LogCaptureFixture) -> None:
    import smtplib

    from tests.utils.email import email_settings, mail, send_key, smtp

    caplog.set_level(logging.DEBUG)
    with _RefusingSink() as relay:
        server = live_server_factory(settings=email_settings(
            allow_networks=["127.0.0.0/8"], allow_from=["zabbix@school.lan"],
            relay={"host": "127.0.0.1", "port": relay.port, "starttls": False, "retry_base_s": 5, "retry_cap_s": 5}))
        with smtp(server, tls=False) as conn, pytest.raises(smtplib.SMTPSenderRefused):
            conn.send_message(mail("+14155550100@sms.school.lan", sender="eve.secret@example.com"),
                              from_addr="eve.secret@example.com")
        with smtp(server, login=send_key(server, "office")) as conn:
            conn.send_message(mail("+14155550100@sms.school.lan", "Can you come at 4?", sender="jane.doe@school.lan"))
        wait_until(lambda: server.simulators[0].sent or server.simulators[1].sent, what="the SMS sent")
        for sim in server.simulators:  # the reply goes back to jane by email: the relay refuses her
            sim.deliver_sms("+14155550100", "Yes, see you then")
        wait_until(lambda: any(r.name == "appliance.email.relay" for r in caplog.records), what="the relay log line")
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "e•••@example.com" in text and "j•••@school.lan" in text
    for secret in ("eve.secret@", "jane.doe@"):
        assert secret not in text, "\n".join(line for line in text.splitlines() if secret in line)
