"""Email to SMS over real SMTP on loopback (smtplib → the appliance's aiosmtpd side → the
queue → the simulated modems), and SMS replies back by email through a local relay sink."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from tests.utils.email import Sink, all_sent, email_settings, free_port, mail, send_key, smtp
from tests.utils.wait import wait_until

Factory = Callable[..., Any]


def _texts(server: Any) -> list[tuple[str, str]]:
    return sorted((r.to, r.text) for r in all_sent(server) if r.part == 1)


def _messages(server: Any) -> list[Any]:
    return server.app.queue.list(limit=1000).items


def test_a_key_after_starttls_sends_the_body_as_an_sms(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings())
    with smtp(server, login=send_key(server)) as conn:
        conn.send_message(mail("+14155550100@sms.school.lan", "Bus leaves at 3pm\n\nOn Mon, Bob wrote:\n> old\n"))
    wait_until(lambda: all_sent(server), what='all_sent(server)')
    assert _texts(server) == [("+14155550100", "Bus leaves at 3pm")]
    (msg,) = _messages(server)
    assert msg.metadata["by"] == "by email from office@school.lan"


def test_several_recipients_national_numbers_html_and_signatures(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings())
    msg = EmailMessage()
    msg["From"] = "Nurse <nurse@school.lan>"
    msg["To"] = "+14155550100@sms.school.lan, (415) 555-0101@sms.school.lan"
    msg["Subject"] = "x"
    msg.set_content("<p>Clinic <b>closed</b> today</p><blockquote>older mail</blockquote>", subtype="html")
    with smtp(server, login=send_key(server)) as conn:
        conn.send_message(msg, to_addrs=["+14155550100@sms.school.lan", "415-555-0101@sms.school.lan"])
    wait_until(lambda: len(all_sent(server)) >= 2, what='len(all_sent(server)) >= 2')
    assert _texts(server) == [("+14155550100", "Clinic closed today"), ("+14155550101", "Clinic closed today")]


def test_subject_utf8_rfc2047_and_emoji_go_as_ucs2(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings(text_from="both"))
    raw = ("From: office@school.lan\r\nTo: +14155550100@sms.school.lan\r\n"
           "Subject: =?UTF-8?B?w4ljb2xlIGZlcm3DqWU=?=\r\nMessage-ID: <u1@school.lan>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "Demain 🎉\r\n-- \r\nLa direction\r\n").encode("utf-8")
    with smtp(server, login=send_key(server)) as conn:
        conn.sendmail("office@school.lan", ["+14155550100@sms.school.lan"], raw)
    wait_until(lambda: all_sent(server), what='all_sent(server)')
    assert _texts(server) == [("+14155550100", "École fermée\nDemain 🎉")]
    assert _messages(server)[0].encoding == "ucs2"


def test_the_same_message_id_twice_sends_one_sms(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings())
    login = send_key(server)
    for _ in range(2):
        with smtp(server, login=login) as conn:
            conn.send_message(mail("+14155550100@sms.school.lan", message_id="<same@school.lan>"))
    wait_until(lambda: all_sent(server), what='all_sent(server)')
    assert len(_messages(server)) == 1


def _refused(server: Any, fn: Callable[[], Any]) -> smtplib.SMTPException:
    with pytest.raises(smtplib.SMTPException) as info:
        fn()
    assert not _messages(server)
    return info.value


def test_a_wrong_key_no_tls_and_an_open_relay_attempt_are_refused(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings())
    name, key = send_key(server)
    err = _refused(server, lambda: smtp(server, login=(name, key + "x")))
    assert isinstance(err, smtplib.SMTPAuthenticationError) and err.smtp_code == 535
    assert b"key" in err.smtp_error
    err = _refused(server, lambda: smtp(server, login=("other-name", key)))
    assert err.smtp_code == 535  # type: ignore[attr-defined]
    with smtp(server, tls=False) as conn:  # AUTH before STARTTLS
        with pytest.raises(smtplib.SMTPException) as info:
            conn.login(name, key)
        assert "Encryption required" in str(info.value) or "AUTH" in str(info.value)
        with pytest.raises(smtplib.SMTPSenderRefused) as sender:
            conn.send_message(mail("+14155550100@sms.school.lan"))
        assert sender.value.smtp_code == 530 and b"STARTTLS" in sender.value.smtp_error
    with smtp(server, login=(name, key)) as conn:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as rcpt:
            conn.send_message(mail("victim@example.com"))
        code, text = rcpt.value.recipients["victim@example.com"]
        assert code == 550 and b"relays nothing" in text
    _, read_key = send_key(server, "reader", ("read",))
    err = _refused(server, lambda: smtp(server, login=("reader", read_key)))
    assert b"send scope" in err.smtp_error  # type: ignore[attr-defined]
    assert not all_sent(server)
    from appliance.db import email as email_db
    from appliance.db.engine import read_tx

    with read_tx(server.app.queue.engine) as tx:
        reasons = [r.reason for r in email_db.list_refusals(tx)]
    assert any("relays nothing" in r for r in reasons) and any("STARTTLS" in r for r in reasons)


def test_allowed_network_and_from_send_without_auth_others_are_refused(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings(allow_networks=["127.0.0.0/8"],
                                                         allow_from=["zabbix@school.lan"]))
    with smtp(server, tls=False) as conn:
        conn.send_message(mail("+14155550100@sms.school.lan", "Disk full on srv1", sender="zabbix@school.lan"),
                          from_addr="zabbix@school.lan")
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            conn.send_message(mail("+14155550100@sms.school.lan", sender="eve@school.lan"), from_addr="eve@school.lan")
        assert info.value.smtp_code == 550 and b"allow_from" in info.value.smtp_error
    wait_until(lambda: all_sent(server), what='all_sent(server)')
    assert _texts(server) == [("+14155550100", "Disk full on srv1")]


def _group(server: Any) -> None:
    with server.client() as api:
        for n in ("+14155550100", "+14155550101"):
            assert api.post("/v1/contacts", json={"number": n}).status_code == 201
        assert api.post("/v1/groups", json={"name": "Year 7 Parents"}).status_code == 201
        r = api.post("/v1/groups/Year 7 Parents/members", json={"numbers": ["+14155550100", "+14155550101"]})
        assert r.status_code in (200, 201), r.text


def test_a_group_takes_an_allowed_sender_and_refuses_others(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings(group_senders=["office"]))
    _group(server)
    with smtp(server, login=send_key(server, "teacher")) as conn:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            conn.send_message(mail("year-7-parents@sms.school.lan"))
        code, text = info.value.recipients["year-7-parents@sms.school.lan"]
        assert code == 550 and b"group_senders" in text
    assert not _messages(server)
    login = send_key(server, "office")
    for _ in range(2):  # the same mail twice: one broadcast
        with smtp(server, login=login) as conn:
            conn.send_message(mail("year-7-parents@sms.school.lan", "Trip tomorrow", message_id="<g1@school.lan>"))
    wait_until(lambda: len(all_sent(server)) >= 2, what='len(all_sent(server)) >= 2')
    assert _texts(server) == [("+14155550100", "Trip tomorrow"), ("+14155550101", "Trip tomorrow")]
    (bc,) = _broadcasts(server)
    assert bc["created_by"] == "by email from office@school.lan"


def _broadcasts(server: Any) -> list[dict[str, Any]]:
    with server.client() as api:
        return api.get("/v1/broadcasts").json()["items"]


def test_too_long_text_is_refused_with_the_limit(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings(), )
    with smtp(server, login=send_key(server)) as conn:
        with pytest.raises(smtplib.SMTPDataError) as info:
            conn.send_message(mail("+14155550100@sms.school.lan", "word " * 2000))
    assert info.value.smtp_code == 554 and b"SMS parts" in info.value.smtp_error
    assert not _messages(server)


def test_a_5_mb_mail_with_attachments_sends_its_text_and_says_so(live_server_factory: Factory) -> None:
    sink = Sink().start()
    try:
        server = live_server_factory(settings=email_settings(relay={"host": "127.0.0.1", "port": sink.port,
                                                                    "starttls": False}))
        msg = mail("+14155550100@sms.school.lan", "See the attached timetable", message_id="<att@school.lan>")
        msg.add_attachment(b"\x00" * (5 * 1024 * 1024), maintype="application", subtype="pdf",
                           filename="timetable.pdf")
        with smtp(server, login=send_key(server)) as conn:
            conn.send_message(msg)
        wait_until(lambda: all_sent(server), what='all_sent(server)')
        assert _texts(server) == [("+14155550100", "See the attached timetable")]
        (rcpts, note), = wait_until(sink.messages, what='sink.messages')
        assert rcpts == ["office@school.lan"] and "timetable.pdf" in note.get_content()
        assert note["In-Reply-To"] == "<att@school.lan>"
    finally:
        sink.stop()


def test_an_sms_reply_comes_back_by_email_threaded(live_server_factory: Factory) -> None:
    sink = Sink().start()
    try:
        server = live_server_factory(settings=email_settings(
            relay={"host": "127.0.0.1", "port": sink.port, "starttls": False}, inbound_to="staff@school.lan"))
        with smtp(server, login=send_key(server)) as conn:
            conn.send_message(mail("+14155550100@sms.school.lan", "Can you come at 4?", message_id="<q1@school.lan>"))
        wait_until(lambda: all_sent(server), what='all_sent(server)')
        server.simulators[0].deliver_sms("+14155550100", "Yes, see you then")
        got = wait_until(lambda: len(sink.messages()) >= 2 and sink.messages(),
                         what='len(sink.messages()) >= 2 and sink.messages()')
        by_to = {rcpts[0]: msg for rcpts, msg in got}
        reply = by_to["office@school.lan"]
        assert reply["Subject"] == "Re: SMS to +14155550100"
        assert reply["In-Reply-To"] == "<q1@school.lan>"
        assert "Yes, see you then" in reply.get_content()
        assert "Yes, see you then" in by_to["staff@school.lan"].get_content()
    finally:
        sink.stop()


def test_relay_down_the_reply_waits_and_goes_when_it_is_back(live_server_factory: Factory) -> None:
    port = free_port()
    server = live_server_factory(settings=email_settings(
        relay={"host": "127.0.0.1", "port": port, "starttls": False, "retry_base_s": 0.2, "retry_cap_s": 1.0}))
    with smtp(server, login=send_key(server)) as conn:
        conn.send_message(mail("+14155550100@sms.school.lan", "Ping", message_id="<p1@school.lan>"))
    wait_until(lambda: all_sent(server), what='all_sent(server)')
    server.simulators[0].deliver_sms("+14155550100", "Pong")
    from appliance.db import email as email_db
    from appliance.db.engine import read_tx

    def failed_once() -> bool:
        with read_tx(server.app.queue.engine) as tx:
            return any(m.attempts >= 1 and m.sent_at is None for m in email_db.list_outbox(tx))

    wait_until(failed_once, what='failed_once')
    sink = Sink(port).start()
    try:
        (rcpts, reply), = wait_until(sink.messages, what='sink.messages')
        assert rcpts == ["office@school.lan"] and "Pong" in reply.get_content()
        assert reply["In-Reply-To"] == "<p1@school.lan>"
    finally:
        sink.stop()


def test_a_failed_sms_is_reported_to_the_sender_threaded(live_server_factory: Factory) -> None:
    sink = Sink().start()
    try:
        server = live_server_factory(simulate=1, settings=email_settings(
            relay={"host": "127.0.0.1", "port": sink.port, "starttls": False}))
        server.simulators[0].fail_sends(21)  # short message transfer rejected: permanent
        with smtp(server, login=send_key(server)) as conn:
            conn.send_message(mail("+14155550100@sms.school.lan", "Hello", message_id="<f1@school.lan>"))
        (rcpts, report), = wait_until(sink.messages, what='sink.messages')
        assert rcpts == ["office@school.lan"] and report["In-Reply-To"] == "<f1@school.lan>"
        assert "could not be sent" in report.get_content() and "failed" in report["Subject"]
    finally:
        sink.stop()


def test_per_sender_rate_limit_bad_numbers_and_unknown_groups(live_server_factory: Factory) -> None:
    server = live_server_factory(settings=email_settings(max_mails_per_minute=5))
    login = send_key(server)
    with smtp(server, login=login) as conn:
        for bad, words in (("12@sms.school.lan", b"not a phone number"),
                           ("no-such-group@sms.school.lan", b"no contact group"),
                           ("=?x?=@sms.school.lan", b"no contact group")):
            with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
                conn.send_message(mail(bad), to_addrs=[bad])
            code, text = info.value.recipients[bad]
            assert code == 550 and words in text, text
    assert not _messages(server)
    with smtp(server, login=login) as conn:  # every MAIL counts: 3 above, 2 here, then no more
        conn.send_message(mail("+14155550100@sms.school.lan", message_id="<r1@x>"))
        conn.send_message(mail("+14155550100@sms.school.lan", message_id="<r2@x>"))
        with pytest.raises(smtplib.SMTPSenderRefused) as limited:
            conn.send_message(mail("+14155550100@sms.school.lan"))
        assert limited.value.smtp_code == 451 and b"max_mails_per_minute" in limited.value.smtp_error
    assert len(_messages(server)) == 2
