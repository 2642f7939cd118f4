"""Retention and per-number privacy requests: erasing bodies, pruning old log rows,
exporting what is stored about one number.

Erasing a body keeps the row (state, parts, times) and sets ``redacted_at``; inbound rows
lose their PDU too (it holds the text). Each ``erase_*``/``prune_*`` function touches at
most ``limit`` rows, so the caller can keep every write transaction short.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from appliance.db.engine import Tx
from appliance.db.rows import delete_in, load_json, placeholders

__all__ = [
    "FINISHED_STATES",
    "Pruned",
    "count_bodies_to_erase",
    "count_events_to_prune",
    "count_inbound_to_erase",
    "count_personal_to_prune",
    "count_send_log_to_prune",
    "INBOUND_WEBHOOK_EVENTS",
    "delete_contact_of",
    "delete_email_of",
    "delete_fragments_of",
    "erase_inbound_bodies_in",
    "erase_message_bodies_in",
    "erase_number_bodies",
    "export_number",
    "inbound_ids_of",
    "max_id",
    "prune_email_outbox",
    "prune_email_threads",
    "prune_events",
    "prune_fragments",
    "prune_inbound_webhooks",
    "prune_send_log",
    "queued_to",
    "redact_webhook_payloads_of",
]

# Outbox events that carry an inbound text's body: the webhooks' ``inbound`` (JSON) and the
# Twilio-compatible side's ``twilio-inbound`` (a form), keyed ``inb_<id>`` / ``twin_<id>``.
INBOUND_WEBHOOK_EVENTS: tuple[str, ...] = ("inbound", "twilio-inbound")

# States a message never leaves by itself: its body is no longer needed to send it.
# ``sent`` is here too (a delivery report may still come, but it does not need the body).
FINISHED_STATES: tuple[str, ...] = (
    "sent", "delivered", "failed", "unknown", "cancelled", "suppressed", "expired",
)
_FINISHED_SQL = ", ".join(f"'{s}'" for s in FINISHED_STATES)

_MESSAGES_DUE = (
    f"FROM messages WHERE redacted_at IS NULL AND status IN ({_FINISHED_SQL}) AND updated_at < ?"
)
# Only handled texts: the keyword actions and webhooks of a new one still read its body.
_INBOUND_DUE = "FROM inbound WHERE redacted_at IS NULL AND handled_at IS NOT NULL AND received_at < ?"


class Pruned(NamedTuple):
    """What one ``prune_*`` batch deleted, and the highest id it looked at: the next batch
    starts after it (a scan from the start would walk every row deleted before it, which
    PostgreSQL keeps in the index until vacuumed)."""

    rows: int
    last_id: int


def _ids(tx: Tx, sql: str, params: Sequence[Any]) -> list[int]:
    return [int(r["id"]) for r in tx.exec_driver_sql(sql, params)]


def count_bodies_to_erase(tx: Tx, before: float) -> int:
    """Finished messages last changed before ``before`` whose body is still stored."""
    return int(tx.exec_driver_sql(f"SELECT COUNT(*) AS n {_MESSAGES_DUE}", (before,)).scalar() or 0)


def max_id(tx: Tx, table: str) -> int:
    """The highest id of ``table`` (0 when empty): where a windowed erase stops."""
    return int(tx.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) AS n FROM {table}").scalar() or 0)


# The windowed erases walk the primary key (NOT INDEXED keeps SQLite off the status index,
# which would collect and sort every finished message for each batch: seconds with a
# million of them, all under the write lock). Each window examines at most ``upto - after``
# rows, so a transaction stays short however many rows were erased before.


def erase_message_bodies_in(tx: Tx, before: float, now: float, *, after: int, upto: int) -> int:
    """Erase the bodies of the finished messages with ``after < id <= upto`` last changed
    before ``before``."""
    return tx.exec_driver_sql(
        f"UPDATE messages NOT INDEXED SET body = '', redacted_at = ? WHERE id > ? AND id <= ? "
        f"AND redacted_at IS NULL AND status IN ({_FINISHED_SQL}) AND updated_at < ?",
        (now, after, upto, before),
    ).rowcount


def erase_inbound_bodies_in(tx: Tx, before: float, now: float, *, after: int, upto: int) -> int:
    """Erase the text (and PDU) of the handled inbound messages with ``after < id <= upto``
    received before ``before``."""
    return tx.exec_driver_sql(
        "UPDATE inbound NOT INDEXED SET body = '', pdu_hex = NULL, redacted_at = ? WHERE id > ? AND id <= ? "
        "AND redacted_at IS NULL AND handled_at IS NOT NULL AND received_at < ?",
        (now, after, upto, before),
    ).rowcount


def _prune_oldest(tx: Tx, table: str, where: str, params: Sequence[Any], limit: int, after: int) -> Pruned:
    ids = _ids(tx, f"SELECT id FROM {table} WHERE id > ? AND {where} ORDER BY id LIMIT ?", (after, *params, limit))
    return Pruned(delete_in(tx, table, "id", ids), ids[-1] if ids else after)


def prune_inbound_webhooks(tx: Tx, before: float, *, limit: int, after: int = 0) -> Pruned:
    """Delete up to ``limit`` outbox rows of inbound events (they hold the text) made before
    ``before``: long delivered or expired."""
    kinds = ", ".join(f"'{k}'" for k in INBOUND_WEBHOOK_EVENTS)
    return _prune_oldest(tx, "webhook_outbox", f"event IN ({kinds}) AND created_at < ?", (before,), limit, after)


def prune_email_outbox(tx: Tx, before: float, *, limit: int, after: int = 0) -> Pruned:
    """Delete up to ``limit`` mails (answers, copies of texts) queued before ``before``."""
    return _prune_oldest(tx, "email_outbox", "created_at < ?", (before,), limit, after)


def prune_fragments(tx: Tx, before: float, *, limit: int, after: int = 0) -> Pruned:
    """Delete up to ``limit`` stored parts of multipart texts received before ``before``
    (their siblings never came)."""
    return _prune_oldest(tx, "inbound_fragments", "received_at < ?", (before,), limit, after)


def prune_email_threads(tx: Tx, before: float, *, limit: int) -> int:
    """Delete up to ``limit`` email threads (a number's last mail: sender, subject) last
    used before ``before``."""
    numbers = [r["number"] for r in tx.exec_driver_sql(
        "SELECT number FROM email_threads WHERE updated_at < ? ORDER BY number LIMIT ?", (before, limit))]
    return delete_in(tx, "email_threads", "number", numbers)


def count_personal_to_prune(tx: Tx, before: float) -> dict[str, int]:
    """What the ``prune_*`` of inbound webhooks, mails, email threads and waiting parts
    would delete (keys as in ``appliance.retention.RetentionReport``)."""
    kinds = ", ".join(f"'{k}'" for k in INBOUND_WEBHOOK_EVENTS)

    def count(sql: str) -> int:
        return int(tx.exec_driver_sql(sql, (before,)).scalar() or 0)

    return {
        "webhook_payloads": count(f"SELECT COUNT(*) FROM webhook_outbox WHERE event IN ({kinds}) AND created_at < ?"),
        "emails": count("SELECT COUNT(*) FROM email_outbox WHERE created_at < ?"),
        "email_threads": count("SELECT COUNT(*) FROM email_threads WHERE updated_at < ?"),
        "fragments": count("SELECT COUNT(*) FROM inbound_fragments WHERE received_at < ?"),
    }


def count_inbound_to_erase(tx: Tx, before: float) -> int:
    """Handled inbound texts received before ``before`` whose body is still stored."""
    return int(tx.exec_driver_sql(f"SELECT COUNT(*) AS n {_INBOUND_DUE}", (before,)).scalar() or 0)


def count_events_to_prune(tx: Tx, before: float) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM events WHERE at < ?", (before,)).scalar() or 0)


def prune_events(tx: Tx, before: float, *, limit: int, after: int = 0) -> Pruned:
    """Delete up to ``limit`` events older than ``before`` with ids above ``after``, oldest first."""
    return _prune_oldest(tx, "events", "at < ?", (before,), limit, after)


def count_send_log_to_prune(tx: Tx, before: float) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM send_log WHERE at < ?", (before,)).scalar() or 0)


def prune_send_log(tx: Tx, before: float, *, limit: int, after: int = 0) -> Pruned:
    """Delete up to ``limit`` send-log rows older than ``before`` with ids above ``after``
    (the caller keeps ``before`` behind the rate caps' longest window)."""
    return _prune_oldest(tx, "send_log", "at < ?", (before,), limit, after)


# ---------------------------------------------------------------------- one number


def export_number(tx: Tx, number: str) -> dict[str, Any]:
    """Everything stored about ``number`` (E.164): its messages, the texts it sent, its
    contact record (with groups) and its consent history. Times are UNIX seconds."""
    messages = [
        {
            "id": r["id"], "to": r["recipient"], "body": r["body"], "status": r["status"], "parts": r["parts"],
            "created_at": r["created_at"], "updated_at": r["updated_at"], "sent_at": r["sent_at"],
            "delivered_at": r["delivered_at"], "error": r["error"], "metadata": load_json(r["metadata_json"]),
            "redacted": r["redacted_at"] is not None, "redacted_at": r["redacted_at"],
        }
        for r in tx.exec_driver_sql(
            "SELECT id, recipient, body, status, parts, created_at, updated_at, sent_at, delivered_at, error, "
            "metadata_json, redacted_at FROM messages WHERE recipient = ? ORDER BY id",
            (number,),
        )
    ]
    inbound = [
        {
            "id": r["id"], "from": r["sender"], "to_modem": r["modem"], "body": r["body"], "parts": r["parts"],
            "received_at": r["received_at"], "keyword": r["keyword"],
            "redacted": r["redacted_at"] is not None, "redacted_at": r["redacted_at"],
        }
        for r in tx.exec_driver_sql(
            "SELECT id, sender, modem, body, parts, received_at, keyword, redacted_at FROM inbound "
            "WHERE sender = ? ORDER BY id",
            (number,),
        )
    ]
    contact: dict[str, Any] | None = None
    row = tx.exec_driver_sql(
        "SELECT id, number, first_name, last_name, fields_json, created_at, updated_at FROM contacts WHERE number = ?",
        (number,),
    ).first()
    if row is not None:
        groups = [
            g["name"] for g in tx.exec_driver_sql(
                "SELECT g.name FROM group_members gm JOIN contact_groups g ON g.id = gm.group_id "
                "WHERE gm.contact_id = ? ORDER BY g.name",
                (row["id"],),
            )
        ]
        contact = {
            "id": row["id"], "number": row["number"], "first_name": row["first_name"],
            "last_name": row["last_name"], "fields": load_json(row["fields_json"]) or {},
            "groups": groups, "created_at": row["created_at"], "updated_at": row["updated_at"],
        }
    consent = [
        {"action": r["action"], "source": r["source"], "at": r["at"], "note": r["note"]}
        for r in tx.exec_driver_sql(
            "SELECT action, source, at, note FROM consent_log WHERE number = ? ORDER BY at, id", (number,)
        )
    ]
    opted_out = tx.exec_driver_sql("SELECT number FROM opt_outs WHERE number = ?", (number,)).first() is not None
    return {
        "number": number, "opted_out": opted_out, "contact": contact, "messages": messages,
        "inbound": inbound, "consent": consent,
    }


def erase_number_bodies(tx: Tx, number: str, now: float) -> tuple[int, int]:
    """Erase the bodies of every message to ``number`` that is not being sent right now
    (the caller cancels its queued ones first) and of every text it sent.
    Returns (messages, inbound texts) erased."""
    messages = tx.exec_driver_sql(
        "UPDATE messages SET body = '', redacted_at = ? WHERE recipient = ? AND redacted_at IS NULL "
        "AND status != 'sending' AND status != 'queued'",
        (now, number),
    ).rowcount
    inbound = tx.exec_driver_sql(
        "UPDATE inbound SET body = '', pdu_hex = NULL, redacted_at = ? WHERE sender = ? AND redacted_at IS NULL",
        (now, number),
    ).rowcount
    return messages, inbound


def inbound_ids_of(tx: Tx, number: str) -> list[int]:
    """Ids of the texts ``number`` sent."""
    return _ids(tx, "SELECT id FROM inbound WHERE sender = ? ORDER BY id", (number,))


def _redacted_payload(payload: str) -> str:
    """``payload`` (JSON or a form) with its body emptied and marked redacted."""
    if payload.startswith("{"):
        try:
            doc = json.loads(payload)
        except ValueError:
            return ""
        data = doc.get("data") if isinstance(doc, dict) else None
        if isinstance(data, dict):
            data["body"] = ""
            data["redacted"] = True
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return urlencode([(k, "" if k == "Body" else v) for k, v in parse_qsl(payload, keep_blank_values=True)])


def redact_webhook_payloads_of(tx: Tx, inbound_ids: Sequence[int]) -> int:
    """Empty the body in the outbox payloads of these inbound texts' events (delivered or
    not: a pending one goes out without it)."""
    done = 0
    for start in range(0, len(inbound_ids), 500):
        chunk = inbound_ids[start:start + 500]
        keys = [f"inb_{i}" for i in chunk] + [f"twin_{i}" for i in chunk]
        rows = tx.exec_driver_sql(
            f"SELECT id, payload FROM webhook_outbox WHERE event_id IN ({placeholders(len(keys))})", tuple(keys)).all()
        for r in rows:
            tx.exec_driver_sql("UPDATE webhook_outbox SET payload = ? WHERE id = ?",
                               (_redacted_payload(r["payload"]), r["id"]))
            done += 1
    return done


def delete_email_of(tx: Tx, number: str, inbound_ids: Sequence[int]) -> int:
    """Delete ``number``'s email thread, the mails carrying its texts (answers and copies,
    sent or not) and the refused mails addressed to it. Returns the mails deleted."""
    tx.exec_driver_sql("DELETE FROM email_threads WHERE number = ?", (number,))
    tx.exec_driver_sql("DELETE FROM email_refusals WHERE rcpt LIKE ?", (f"{number}@%",))
    done = 0
    for start in range(0, len(inbound_ids), 500):
        chunk = inbound_ids[start:start + 500]
        keys = [f"reply:{i}" for i in chunk] + [f"inbound:{i}" for i in chunk]
        done += delete_in(tx, "email_outbox", "key", keys)
    return done


def delete_fragments_of(tx: Tx, number: str) -> int:
    """Delete the stored parts of multipart texts from ``number`` still waiting for their siblings."""
    return tx.exec_driver_sql("DELETE FROM inbound_fragments WHERE sender = ?", (number,)).rowcount


def queued_to(tx: Tx, number: str) -> list[int]:
    """Ids of the messages to ``number`` still waiting to be sent."""
    return _ids(tx, "SELECT id FROM messages WHERE recipient = ? AND status = 'queued' ORDER BY id", (number,))


def delete_contact_of(tx: Tx, number: str) -> bool:
    """Delete the contact with this number and its group memberships."""
    row = tx.exec_driver_sql("SELECT id FROM contacts WHERE number = ?", (number,)).first()
    if row is None:
        return False
    tx.exec_driver_sql("DELETE FROM group_members WHERE contact_id = ?", (row["id"],))
    tx.exec_driver_sql("DELETE FROM contacts WHERE id = ?", (row["id"],))
    return True
