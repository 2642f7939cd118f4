"""Helpers for the retention and privacy tests: a database's raw text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_bytes_after_vacuum(url: str) -> bytes:
    """The SQLite file (and its WAL, if any) after ``VACUUM`` and a truncating checkpoint:
    the bytes an attacker with the disk would read."""
    path = Path(make_url(url).database or "")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def postgres_tables_containing(engine: object, text: str) -> list[str]:
    """The tables (of the public schema) with a row whose text contains ``text``."""
    from appliance.db.engine import read_tx

    found = []
    with read_tx(engine) as tx:  # type: ignore[arg-type]
        tables = [r["tablename"] for r in tx.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            hit = tx.exec_driver_sql(
                f'SELECT 1 AS hit FROM "{table}" t WHERE position(? in t::text) > 0 LIMIT 1', (text,)
            ).first()
            if hit is not None:
                found.append(table)
    return found


def spread_text(queue: object, number: str, text: str, *, tag: str) -> None:
    """Where else a text ``number`` sent ends up, made by the real producers: the webhook
    outbox (JSON, and a Twilio-style form), an email thread with the answer and the copy
    the relay pump makes, and a waiting part of a multipart text (whose sibling never came).
    Call it after the text was stored (handled)."""
    from urllib.parse import urlencode

    from appliance.config import EmailSection
    from appliance.db import email as email_db
    from appliance.db import outbox as outbox_db
    from appliance.db.engine import read_tx, write_tx
    from appliance.email.relay import MailRelay
    from appliance.webhooks.outbox import Outbox

    engine = queue.engine  # type: ignore[attr-defined]
    clock = queue.clock  # type: ignore[attr-defined]
    with write_tx(engine) as tx:
        email_db.save_thread(tx, number, "jane.doe@school.lan", f"<{tag}@school.lan>", f"{tag} subject", clock())
        email_db.record_refusal(tx, at=clock(), peer="127.0.0.1", mail_from="jane.doe@school.lan",
                                rcpt=f"{number}@sms.school.lan", code=554, reason=f"5.3.4 {tag}-refused too long")
    Outbox(engine, clock=clock).pump({"inbound": ["http://hooks.school.lan/in"]})
    relay = MailRelay(engine, EmailSection(enabled=True, relay={"host": "127.0.0.1"}, inbound_to="staff@school.lan"),
                      node="n1", clock=clock)
    relay.pump()
    with read_tx(engine) as tx:
        ids = [int(r["id"]) for r in tx.exec_driver_sql("SELECT id FROM inbound WHERE sender = ?", (number,))]
    with write_tx(engine) as tx:
        outbox_db.add_deliveries(tx, [outbox_db.NewDelivery(
            f"twin_{i}", "http://crm.school.lan/sms", "twilio-inbound",
            urlencode({"From": number, "Body": text, "NumSegments": "1"})) for i in ids], clock())
    queue.store_inbound_fragment("m1", number, ref=7, total=2, seq=1, body=f"{text} (part 1)",  # type: ignore[attr-defined]
                                 pdu_hex=f"{tag}-pdu", digest=f"{tag}-frag")
