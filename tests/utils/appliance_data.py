"""An appliance database with rows in every table, made by driving the real services.

:func:`fill_every_table` is what a copy or migration test starts from; a table it leaves
empty shows up in :func:`empty_tables` (so a new table without rows here fails the tests
that assert there are none). :func:`all_rows` reads a table back for comparisons.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from appliance.api.keys import ApiKeys
from appliance.broadcasts.service import Audience, BroadcastService, BroadcastSpec
from appliance.contacts.book import ContactBook
from appliance.db.copy import read_batches
from appliance.db import twilio as twilio_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.schema import metadata
from appliance.queue import Queue
from appliance.twilio import TwilioCredentials
from appliance.web.users import Sessions, Users
from appliance.webhooks.outbox import Outbox

ANN = "+14155550100"
BOB = "+14155550101"
CID = "+14155550102"
STOPPED = "+14155550199"


@dataclass(frozen=True, slots=True)
class Filled:
    """Ids worth checking after a copy: a message still queued (normal priority)."""

    queued_message: int
    max_message_id: int


def fill_every_table(url: str) -> Filled:
    """Drive the services over ``url`` (at the newest schema) until every table has rows."""
    queue = Queue(url)
    engine = queue.engine
    try:
        queue.upsert_modem("m1", imei="861477033674423", iccid="8901260000000000001", model="SIM800",
                           state="online", node="pi-1")
        # A message sent and delivered: parts, send log, events.
        delivered = queue.enqueue([ANN], "Your code is 1234", priority="high")[0]
        claim = queue.claim("m1", max_parts=10, sim="8901260000000000001")
        assert claim is not None and claim.message_id == delivered.id
        now = time.time()
        assert queue.begin_part(claim, claim.parts[0], now) == "go"
        queue.part_sent(claim, claim.parts[0], 17, now)
        queue.apply_status_report("m1", 17, ANN, 0)
        # One still queued, with an idempotency key and metadata.
        queued = queue.enqueue([BOB], "See you at 10:30", idempotency_key="k-1", metadata={"ref": "A-1"})[0]
        # Consent: one number opted out, one opted out and back in.
        queue.opt_out(STOPPED, source="api", note="asked by phone")
        queue.opt_out(CID, source="keyword")
        queue.opt_in(CID, source="web", note="asked again")
        # Inbound: a single SMS, a two-part one reassembled (consumed PDUs), a part waiting.
        queue.store_inbound("m1", ANN, "STOP", digest="d-single", keyword="stop", handled=True)
        queue.store_inbound_fragment("m1", BOB, ref=7, total=2, seq=1, body="Hello ", pdu_hex="00AA",
                                     digest="d-frag-1")
        group = queue.store_inbound_fragment("m1", BOB, ref=7, total=2, seq=2, body="there", pdu_hex="00BB",
                                             digest="d-frag-2")
        assert group is not None
        queue.store_inbound("m1", BOB, "Hello there", digest="d-frag-1+2", parts=2, handled=True,
                            fragments=group)
        queue.store_inbound_fragment("m1", CID, ref=9, total=3, seq=1, body="part one", pdu_hex="00CC",
                                     digest="d-frag-waiting")
        # Contacts, a group with members, a broadcast started to it.
        book = ContactBook(engine)
        book.create(ANN, first_name="Ann", last_name="Lee", fields={"class": "5B"}, groups=["parents"])
        book.create(BOB, first_name="Bob", fields={"class": "5C"}, groups=["parents"])
        book.create_group("5B", description="class 5B", filter='class = "5B"')
        broadcasts = BroadcastService(queue, book)
        broadcasts.create_and_start(BroadcastSpec("Hi {first_name|there}, school is closed today.",
                                                  Audience(groups=("parents",)), name="closure"))
        # An API key, a web user with a session.
        ApiKeys(engine).create("crm", ["send", "read"])
        # A Twilio-compatible credential and a message sent through it.
        cred = TwilioCredentials(engine).create("twilio-crm", ["send", "read"])
        queue.enqueue([BOB], "Sent the Twilio way", within=lambda tx, ids: twilio_db.insert_message(
            tx, ids[0], sid="SM" + "ab" * 16, account_sid=cred.account_sid,
            status_callback="http://hooks.example/twilio", now=time.time()))
        user = Users(engine).create("alice", "correct horse battery", role="admin")
        Sessions(engine).create(user)
        # Webhook outbox rows (and the cursors the pump keeps), one of them given up on.
        outbox = Outbox(engine)
        outbox.pump({"inbound": ["http://hooks.example/in"], "status": ["http://hooks.example/status"]})
        entries = outbox.entries()
        assert entries
        outbox.mark_failed(entries[0].id, attempts=8, next_attempt_at=float("inf"), error="HTTP 500")
        outbox.mark_delivered(entries[-1].id, attempts=1)
        add_stopped_node(engine, "pi-1", heartbeat_age_s=3600.0)
        fill_email_tables(engine)
        # Prepaid balances read by USSD (issue 15).
        from appliance.db import balances as balances_db

        with write_tx(engine) as tx:
            balances_db.record(tx, "m1", iccid="8901260000000000001", amount=12.5,
                               text="Your balance is 12.50 USD.", at=time.time())
            balances_db.record(tx, "m1", iccid="8901260000000000001", amount=3.0, text="Balance 3,00", at=time.time())
        # The audit trail (issue 17): two lines, so the copy pages through them.
        from appliance.audit import Action, Actor, record

        record(engine, Actor.user("ann"), Action.OPTOUT_ADD, "+1415•••0100", {"note": "é"})
        record(engine, Actor.cli(), Action.KEY_CREATE, "crm", {"scopes": ["send"]})

        # Signal samples for the dashboard's chart (issue 17): one with a reading, one without.
        from appliance.db import signals as signals_db

        with write_tx(engine) as tx:
            signals_db.record_samples(tx, [
                signals_db.SignalSampleIn("m1", time.time() - 300, 20, -73, 4, node="pi-1"),
                signals_db.SignalSampleIn("m1", time.time(), None, None, None, node="pi-1"),
            ])

        # SIM health (issue 15 item 2): one SIM paused by an admin, with its modem.paused event.
        from appliance.queue.sim_health import SimHealth

        SimHealth(engine).pause("m1", by="admin:test", reason="SIM swap")
        max_id = max(m.id for m in queue.list(limit=1000).items)
        return Filled(queued_message=queued.id, max_message_id=max_id)
    finally:
        queue.close()


def fill_email_tables(engine: Engine) -> None:
    """Email to SMS rows: a thread, a mail seen, a refusal, one answer sent and one pending."""
    from appliance.db import email as email_db

    now = time.time()
    with write_tx(engine) as tx:
        email_db.save_thread(tx, ANN, "office@school.lan", "<q1@school.lan>", "Trip", now)
        email_db.first_sight(tx, "email:key:office:<q1@school.lan>:group:parents", now)
        email_db.record_refusal(tx, at=now, peer="10.0.0.9", mail_from="eve@example.com", rcpt="x@example.com",
                                code=550, reason="5.7.1 relays nothing else")
        email_db.add_mail(tx, key="reply:1", mail_to="office@school.lan", subject="Re: SMS to " + ANN, body="Yes",
                          in_reply_to="<q1@school.lan>", now=now)
        email_db.add_mail(tx, key="inbound:1", mail_to="staff@school.lan", subject="SMS from " + ANN, body="Yes",
                          in_reply_to=None, now=now)
        sent = email_db.lease_due(tx, "pi-1", now=now, until=now + 60, limit=1)
        email_db.mark_sent(tx, sent[0].id, attempts=1, at=now)


def add_stopped_node(engine: Engine, name: str, *, heartbeat_age_s: float, stopped: bool = True) -> None:
    """A ``nodes`` row as a daemon leaves it (stopped, or alive ``heartbeat_age_s`` ago)."""
    now = time.time()
    beat = now - heartbeat_age_s
    columns = ["name", "host", "pid", "version", "api_url", "lease_s", "started_at", "heartbeat_at",
               "stopped_at", "recovered_at", "recovered_by"]
    with write_tx(engine) as tx:
        tx.insert_rows("nodes", columns, [
            (name, "pi-1.local", 4242, "1.0.0", "http://pi-1.local:8080", 30.0, beat - 60.0, beat,
             beat if stopped else None, None, None),
        ])


def empty_tables(engine: Engine) -> list[str]:
    """The tables of the schema without a row."""
    with read_tx(engine) as tx:
        return [t.name for t in metadata.sorted_tables
                if not any(batch for batch in read_batches(tx, t, batch_rows=1))]


def all_rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` (values in column order), sorted by primary key in Python
    (the engines sort text differently)."""
    t = metadata.tables[table]
    keys = [i for i, c in enumerate(t.columns) if c.primary_key]
    with read_tx(engine) as tx:
        rows = [row for batch in read_batches(tx, t) for row in batch]
    return sorted(rows, key=lambda r: tuple(r[i] for i in keys))
