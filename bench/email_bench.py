"""Email to SMS benchmark: mails accepted per second over parallel SMTP connections, the
SMS queue's state after, and the daemon's idle memory with the SMTP side on and off.

    .venv/bin/python bench/email_bench.py [--mails 1000] [--connections 4]

Runs the real daemon (``appliance serve --simulate 4``) as a subprocess with its database
in a temporary directory, twice:

1. ``[email]`` off: idle RSS after start-up (the baseline);
2. ``[email]`` on: idle RSS (target ≤ 80 MB), then ``--mails`` mails (each to its own
   number, its own Message-ID) over ``--connections`` SMTP connections, each STARTTLS + AUTH
   once with a send-scope key; mails/s from the first MAIL to the last 250 (goal ≥ 50 here).
   Then every mail is sent again with its Message-ID: the queue must hold exactly one
   message per mail (each queued once).

The per-sender rate limit is raised for the run (``APPLIANCE_EMAIL__MAX_MAILS_PER_MINUTE``).
The machine is shared: quote medians of a few runs.
"""

from __future__ import annotations

import argparse
import smtplib
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
from email.message import EmailMessage


from common import appliance_env, free_port, join_all, make_key, rss_mb, start_daemon, stop


def idle_rss(daemon: subprocess.Popen[str], settle_s: float) -> float:
    time.sleep(settle_s)
    return rss_mb(daemon.pid)


def mail(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "bench@school.lan"
    msg["To"] = f"+1415555{i:04d}@sms.school.lan"
    msg["Subject"] = "bench"
    msg["Message-ID"] = f"<bench-{i}@school.lan>"
    msg.set_content(f"Bench mail number {i}: the bus leaves at 3pm.\n\nOn Mon, Bob wrote:\n> earlier\n")
    return msg


def blast(port: int, login: tuple[str, str], mails: list[EmailMessage], connections: int) -> float:
    """Send ``mails`` over ``connections`` connections; the seconds it took."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    errors: list[str] = []
    conns = []
    for _ in range(connections):
        conn = smtplib.SMTP("127.0.0.1", port, timeout=60)
        conn.starttls(context=ctx)
        conn.login(*login)
        conns.append(conn)

    def worker(conn: smtplib.SMTP, mine: list[EmailMessage]) -> None:
        try:
            for m in mine:
                conn.send_message(m)
        except smtplib.SMTPException as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(c, mails[i::connections])) for i, c in enumerate(conns)]
    started = time.perf_counter()
    try:
        join_all(threads, errors, "mails")
    finally:
        for conn in conns:
            conn.quit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/bench.db"
        env = appliance_env(db)
        key = make_key(env, "bench", "--scope", "send").strip().splitlines()[-1]

        daemon = start_daemon(env, free_port())
        try:
            off = idle_rss(daemon, args.settle)
        finally:
            stop(daemon)

        smtp_port = free_port()
        env_on = {**env, "APPLIANCE_EMAIL__ENABLED": "true", "APPLIANCE_EMAIL__HOST": "127.0.0.1",
                  "APPLIANCE_EMAIL__PORT": str(smtp_port), "APPLIANCE_EMAIL__MAX_MAILS_PER_MINUTE": "1000000"}
        daemon = start_daemon(env_on, free_port())
        try:
            on = idle_rss(daemon, args.settle)
            print(f"idle daemon RSS, 4 simulated modems: email off {off:.1f} MB, email on {on:.1f} MB "
                  f"(+{on - off:.1f} MB; target <= 80)")
            mails = [mail(i) for i in range(args.mails)]
            took = blast(smtp_port, ("bench", key), mails, args.connections)
            print(f"{args.mails} mails over {args.connections} connections: {took:.2f} s, "
                  f"{args.mails / took:.0f} mails/s accepted and queued (goal >= 50)")
            again = blast(smtp_port, ("bench", key), mails, args.connections)
            print(f"the same {args.mails} mails again (same Message-IDs): {took / again:.2f}x the first pass's speed")
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                total, distinct = conn.execute(
                    "SELECT COUNT(*), COUNT(DISTINCT recipient) FROM messages").fetchone()
                states = dict(conn.execute("SELECT status, COUNT(*) FROM messages GROUP BY status").fetchall())
            verdict = "each queued once" if total == distinct == args.mails else "MISMATCH"
            print(f"queue after: {total} messages to {distinct} numbers ({verdict}); by state now: {states}")
        finally:
            stop(daemon)


if __name__ == "__main__":
    main()
