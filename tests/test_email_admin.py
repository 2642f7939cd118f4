"""Email to SMS, visible: the /email admin page, /metrics, ``appliance email info``, the
parsing of mails (unit), and the daemon's import set with the SMTP side off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.email import html_to_text, read_mail, strip_quotes
from tests.utils.daemon import run_after_start
from tests.utils.email import email_settings, mail, send_key, smtp


def test_the_email_page_shows_settings_fingerprint_and_refusals_never_the_password(
    live_server_factory: Any, web_client: Any
) -> None:
    server = live_server_factory(settings=email_settings(
        relay={"host": "127.0.0.1", "port": 1, "user": "relay-user", "password": "hunter2-secret"}))
    with smtp(server, login=send_key(server)) as conn:
        with pytest.raises(Exception):
            conn.send_message(mail("someone@example.com"))
    staff = web_client(server)
    assert staff.get("/email").status_code == 403
    admin = web_client(server, role="admin")
    page = admin.get("/email")
    assert page.status_code == 200
    assert server.app.email.cert.fingerprint in page.text
    assert "relays nothing" in page.text and "someone@example.com" in page.text
    assert "hunter2-secret" not in page.text and "relay-user" in page.text
    assert 'href="/email"' in page.text
    metrics = server.client().get("/metrics").text
    assert 'appliance_email_mails_total{result="refused"} 1.0' in metrics
    assert 'appliance_email_mails_total{result="accepted"} 0.0' in metrics


def test_the_email_page_says_when_the_side_is_off(live_server: Any, web_client: Any) -> None:
    page = web_client(live_server, role="admin").get("/email")
    assert page.status_code == 200 and "Email to SMS is off" in page.text


def test_email_info_prints_the_fingerprint_and_no_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{tmp_path / 'a.db'}"
    env["APPLIANCE_EMAIL__RELAY__PASSWORD"] = "hunter2-secret"
    env["APPLIANCE_EMAIL__RELAY__HOST"] = "mail.school.lan"
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "email", "info", "--json"], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    info = json.loads(out)
    assert (tmp_path / "email-cert.pem").exists() and (tmp_path / "email-key.pem").stat().st_mode & 0o077 == 0
    assert len(info["fingerprint_sha256"].split(":")) == 32 and info["relay"] == "mail.school.lan:587"
    assert "hunter2" not in out
    again = json.loads(subprocess.run([sys.executable, "-m", "appliance.cli", "email", "info", "--json"], env=env,
                                      check=True, capture_output=True, text=True, timeout=60).stdout)
    assert again["fingerprint_sha256"] == info["fingerprint_sha256"]  # made once, kept


def test_the_daemon_with_email_off_imports_no_smtp_server(tmp_path: Path) -> None:
    out = run_after_start(f"sqlite:///{tmp_path / 'a.db'}", (
        "from appliance.api import create_app\n"
        "from appliance.web import mount_web\n"
        "mount_web(create_app(app))\n"
        "print(sorted(m for m in ('aiosmtpd', 'cryptography', 'appliance.email') if m in sys.modules))\n"
    ))
    assert out.strip() == "[]"


def test_the_daemon_with_email_on_makes_its_certificate_without_importing_cryptography(tmp_path: Path) -> None:
    email = {"APPLIANCE_EMAIL__ENABLED": "true", "APPLIANCE_EMAIL__HOST": "127.0.0.1", "APPLIANCE_EMAIL__PORT": "0"}
    out = run_after_start(f"sqlite:///{tmp_path / 'a.db'}", (
        "app.start()\n"
        "print(app.email.port > 0, app.email.cert.self_signed, 'cryptography' in sys.modules)\n"
        "app.stop()\n"
    ), env=email, timeout=90)
    assert out.strip() == "True True False"
    assert (tmp_path / "email-cert.pem").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi\r\n\r\nOn Tue, 3 Dec 2026 at 09:00, Ann <a@b> wrote:\r\n> earlier\r\n", "Hi"),
    ("Call me\n-- \nJane Doe\nSchool nurse", "Call me"),
    ("Yes\n> > nested\n>plain\nthanks", "Yes\nthanks"),
    ("Ok\n-----Original Message-----\nFrom: x", "Ok"),
    ("a -- b stays", "a -- b stays"),
])
def test_quotes_and_signatures_are_cut(text: str, expected: str) -> None:
    assert strip_quotes(text) == expected


def test_html_becomes_text_without_scripts_or_quotes() -> None:
    html = ("<html><head><title>t</title><style>p{}</style><script>alert(1)</script></head><body>"
            "<div>Dear parent,</div><p>School is&nbsp;closed &amp; the bus <i>won't</i> run.</p>"
            "<blockquote>Old mail</blockquote></body></html>")
    assert html_to_text(html) == "Dear parent,\n\nSchool is closed & the bus won't run."


def test_a_mail_with_only_attachments_has_no_body_and_names_them() -> None:
    msg = mail("+14155550100@sms.school.lan", "x")
    msg.clear_content()
    msg.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="report.pdf")
    parsed = read_mail(bytes(msg))
    assert parsed.body == "" and parsed.attachments == ("report.pdf",)


def test_a_lying_charset_does_not_fail() -> None:
    raw = (b"From: a@b\r\nSubject: x\r\nContent-Type: text/plain; charset=klingon\r\n\r\nhello \xff\r\n")
    assert read_mail(raw).body.startswith("hello")


def test_the_text_is_the_body_the_subject_or_both() -> None:
    parsed = read_mail(bytes(mail("+14155550100@sms.school.lan", "Body line\n", subject="Fire drill 10:00")))
    assert parsed.text("body") == "Body line"
    assert parsed.text("subject") == "Fire drill 10:00"
    assert parsed.text("both") == "Fire drill 10:00\nBody line"
