"""Email to SMS records: the last mail per number (``email_threads``), refused mails
(``email_refusals``) and the outbox of mails sent through the relay (``email_outbox``).

The outbox is leased like the webhook outbox (:mod:`appliance.db.outbox`): :func:`lease_due`
hands each due row to one node until its lease ends; ``key`` is unique and inserts skip a
conflict, so a mail is made once however often its source is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.db.engine import Tx

__all__ = [
    "EmailThread",
    "FailedEmailSms",
    "InboundForEmail",
    "ModemEvent",
    "OutgoingMail",
    "Refusal",
    "add_mail",
    "count_outbox",
    "count_refusals",
    "failed_after",
    "first_sight",
    "forget_sight",
    "get_thread",
    "inbound_after",
    "lease_due",
    "list_outbox",
    "list_refusals",
    "lock_pump",
    "mark_failed",
    "mark_sent",
    "max_event_id",
    "max_inbound_id",
    "modem_events_between",
    "next_due",
    "prune",
    "record_refusal",
    "release_node",
    "save_thread",
]


@dataclass(frozen=True, slots=True)
class EmailThread:
    """The last mail that became an SMS to ``number``."""

    number: str
    sender: str
    message_id: str
    subject: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class Refusal:
    id: int
    at: float
    peer: str
    mail_from: str
    rcpt: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    id: int
    key: str
    mail_to: str
    subject: str
    body: str
    in_reply_to: str | None
    created_at: float
    attempts: int
    next_attempt_at: float
    sent_at: float | None
    last_error: str | None
    leased_by: str | None


@dataclass(frozen=True, slots=True)
class InboundForEmail:
    """A complete received SMS (what a reply mail says)."""

    id: int
    sender: str
    body: str
    received_at: float


@dataclass(frozen=True, slots=True)
class FailedEmailSms:
    """A ``failed`` event of a message: its id, recipient, error and metadata (JSON)."""

    event_id: int
    message_id: int
    recipient: str
    error: str | None
    metadata_json: str | None


@dataclass(frozen=True, slots=True)
class ModemEvent:
    """An event about a modem, not a message (``modem.paused``...), with its detail (JSON)."""

    event_id: int
    kind: str
    modem: str | None
    at: float
    detail_json: str | None


def modem_events_between(tx: Tx, after: int, last: int, kinds: Sequence[str]) -> list[ModemEvent]:
    """The events of ``kinds`` with no message whose id is in ``(after, last]``."""
    if not kinds or last <= after:
        return []
    return [
        ModemEvent(event_id=r["id"], kind=r["kind"], modem=r["modem"], at=r["at"], detail_json=r["detail"])
        for r in tx.exec_driver_sql(
            f"SELECT id, kind, modem, at, detail FROM events WHERE id > ? AND id <= ? AND message_id IS NULL "
            f"AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY id",
            (after, last, *kinds),
        )
    ]


# ---------------------------------------------------------------------- threads


def save_thread(tx: Tx, number: str, sender: str, message_id: str, subject: str, now: float) -> None:
    """``number``'s last mail is now this one."""
    tx.exec_driver_sql(
        "INSERT INTO email_threads (number, sender, message_id, subject, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (number) DO UPDATE SET sender = excluded.sender, message_id = excluded.message_id, "
        "subject = excluded.subject, updated_at = excluded.updated_at",
        (number, sender, message_id, subject[:300], now),
    )


def get_thread(tx: Tx, number: str) -> EmailThread | None:
    r = tx.exec_driver_sql(
        "SELECT number, sender, message_id, subject, updated_at FROM email_threads WHERE number = ?", (number,)
    ).first()
    if r is None:
        return None
    return EmailThread(number=r["number"], sender=r["sender"], message_id=r["message_id"], subject=r["subject"],
                       updated_at=r["updated_at"])


def first_sight(tx: Tx, key: str, now: float) -> bool:
    """Note ``key`` (a mail's Message-ID and target) as acted on; False when it already was."""
    return tx.exec_driver_sql(
        "INSERT INTO email_seen (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now)
    ).rowcount > 0


def forget_sight(tx: Tx, key: str) -> None:
    """Undo :func:`first_sight` (acting on the mail failed)."""
    tx.exec_driver_sql("DELETE FROM email_seen WHERE key = ?", (key,))


# ---------------------------------------------------------------------- refusals


def record_refusal(tx: Tx, *, at: float, peer: str, mail_from: str, rcpt: str, code: int, reason: str) -> None:
    tx.exec_driver_sql(
        "INSERT INTO email_refusals (at, peer, mail_from, rcpt, code, reason) VALUES (?, ?, ?, ?, ?, ?)",
        (at, peer[:100], mail_from[:300], rcpt[:300], code, reason[:500]),
    )


def list_refusals(tx: Tx, *, limit: int = 50) -> list[Refusal]:
    """The newest refusals first."""
    return [
        Refusal(id=r["id"], at=r["at"], peer=r["peer"], mail_from=r["mail_from"], rcpt=r["rcpt"], code=r["code"],
                reason=r["reason"])
        for r in tx.exec_driver_sql(
            "SELECT id, at, peer, mail_from, rcpt, code, reason FROM email_refusals ORDER BY id DESC LIMIT ?",
            (limit,),
        )
    ]


def count_refusals(tx: Tx) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM email_refusals").scalar_one())


# ---------------------------------------------------------------------- sources of answers


def lock_pump(tx: Tx) -> None:
    """One node at a time moves the email cursors (SQLite's write lock already does it)."""
    tx.lock("email:cursor")


def max_inbound_id(tx: Tx) -> int:
    return int(tx.exec_driver_sql("SELECT COALESCE(MAX(id), 0) AS n FROM inbound").scalar_one())


def max_event_id(tx: Tx) -> int:
    return int(tx.exec_driver_sql("SELECT COALESCE(MAX(id), 0) AS n FROM events").scalar_one())


def inbound_after(tx: Tx, after: int, *, limit: int) -> list[InboundForEmail]:
    """Up to ``limit`` inbound rows after id ``after`` (id order); incomplete ones too."""
    return [
        InboundForEmail(id=r["id"], sender=r["sender"], body=r["body"], received_at=r["received_at"])
        for r in tx.exec_driver_sql(
            "SELECT id, sender, body, received_at FROM inbound WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
    ]


def failed_after(tx: Tx, after: int, *, limit: int) -> tuple[int, list[FailedEmailSms]]:
    """The ``failed`` events among the next ``limit`` events after id ``after``, and the
    last event id read (to move the cursor to)."""
    rows = tx.exec_driver_sql(
        "SELECT e.id, e.kind, e.message_id, m.recipient, m.error, m.metadata_json "
        "FROM events e LEFT JOIN messages m ON m.id = e.message_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (after, limit),
    ).all()
    last = rows[-1]["id"] if rows else after
    failed = [
        FailedEmailSms(event_id=r["id"], message_id=r["message_id"], recipient=r["recipient"], error=r["error"],
                       metadata_json=r["metadata_json"])
        for r in rows
        if r["kind"] == "failed" and r["message_id"] is not None and r["recipient"] is not None
    ]
    return last, failed


# ---------------------------------------------------------------------- outbox

_COLS = ("id, key, mail_to, subject, body, in_reply_to, created_at, attempts, next_attempt_at, sent_at, "
         "last_error, leased_by")


def _mail(r: Any) -> OutgoingMail:
    return OutgoingMail(
        id=r["id"], key=r["key"], mail_to=r["mail_to"], subject=r["subject"], body=r["body"],
        in_reply_to=r["in_reply_to"], created_at=r["created_at"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], sent_at=r["sent_at"], last_error=r["last_error"],
        leased_by=r["leased_by"],
    )


def add_mail(tx: Tx, *, key: str, mail_to: str, subject: str, body: str, in_reply_to: str | None,
             now: float) -> bool:
    """Make the mail ``key`` unless it exists; True when made. Due at once."""
    result = tx.exec_driver_sql(
        "INSERT INTO email_outbox (key, mail_to, subject, body, in_reply_to, created_at, attempts, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (key) DO NOTHING",
        (key, mail_to, subject, body, in_reply_to, now, now),
    )
    return result.rowcount > 0


def lease_due(tx: Tx, node: str, *, now: float, until: float, limit: int) -> list[OutgoingMail]:
    """Lease up to ``limit`` unsent mails due at ``now`` to ``node`` until ``until``; rows
    another node is leasing are skipped."""
    skip = " FOR UPDATE SKIP LOCKED" if tx.postgres else ""
    rows = tx.exec_driver_sql(
        "UPDATE email_outbox SET leased_by = ?, next_attempt_at = ? WHERE id IN ("
        f"SELECT id FROM email_outbox WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?{skip}"
        f") RETURNING {_COLS}",
        (node, until, now, limit),
    ).all()
    return sorted((_mail(r) for r in rows), key=lambda m: m.id)


def mark_sent(tx: Tx, mail_id: int, *, attempts: int, at: float) -> None:
    tx.exec_driver_sql(
        "UPDATE email_outbox SET sent_at = ?, attempts = ?, last_error = NULL WHERE id = ? AND sent_at IS NULL",
        (at, attempts, mail_id),
    )


def mark_failed(tx: Tx, mail_id: int, *, attempts: int, next_attempt_at: float, error: str, node: str) -> None:
    """A failed attempt: due again at ``next_attempt_at`` (unless another node leased it since)."""
    tx.exec_driver_sql(
        "UPDATE email_outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, leased_by = NULL "
        "WHERE id = ? AND sent_at IS NULL AND (leased_by IS NULL OR leased_by = ?)",
        (attempts, next_attempt_at, error[:500], mail_id, node),
    )


def release_node(tx: Tx, node: str, now: float) -> int:
    """Give back the leases ``node`` holds (it restarted)."""
    return tx.exec_driver_sql(
        "UPDATE email_outbox SET leased_by = NULL, next_attempt_at = ? "
        "WHERE leased_by = ? AND sent_at IS NULL AND next_attempt_at > ?",
        (now, node, now),
    ).rowcount


def next_due(tx: Tx) -> float | None:
    value = tx.exec_driver_sql("SELECT MIN(next_attempt_at) AS n FROM email_outbox WHERE sent_at IS NULL").scalar()
    return None if value is None else float(value)


def list_outbox(tx: Tx, *, pending: bool | None = None, limit: int = 100) -> list[OutgoingMail]:
    """Outbox rows, oldest first (``pending``: unsent only / sent only)."""
    sql = f"SELECT {_COLS} FROM email_outbox"
    if pending is not None:
        sql += " WHERE sent_at IS NULL" if pending else " WHERE sent_at IS NOT NULL"
    return [_mail(r) for r in tx.exec_driver_sql(sql + " ORDER BY id LIMIT ?", (limit,))]


def count_outbox(tx: Tx) -> tuple[int, int]:
    """(sent, pending) mails."""
    r = tx.exec_driver_sql(
        "SELECT SUM(CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END) AS sent, "
        "SUM(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END) AS pending FROM email_outbox"
    ).first()
    return int(r["sent"] or 0), int(r["pending"] or 0)


def prune(tx: Tx, before: float) -> None:
    """Forget sent mails and refusals older than ``before``."""
    tx.exec_driver_sql("DELETE FROM email_outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (before,))
    tx.exec_driver_sql("DELETE FROM email_refusals WHERE at < ?", (before,))
