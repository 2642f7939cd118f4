"""Retention and per-number privacy requests: erasing bodies, pruning old log rows,
exporting what is stored about one number.

Erasing a body keeps the row (state, parts, times) and sets ``redacted_at``; inbound rows
lose their PDU too (it holds the text). Each ``erase_*``/``prune_*`` function touches at
most ``limit`` rows, so the caller can keep every write transaction short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.db.engine import Tx
from appliance.db.rows import load_json, placeholders

__all__ = [
    "FINISHED_STATES",
    "count_bodies_to_erase",
    "count_events_to_prune",
    "count_inbound_to_erase",
    "count_send_log_to_prune",
    "delete_contact_of",
    "erase_inbound_bodies",
    "erase_message_bodies",
    "erase_number_bodies",
    "export_number",
    "prune_events",
    "prune_send_log",
    "queued_to",
]

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


def _ids(tx: Tx, sql: str, params: Sequence[Any]) -> list[int]:
    return [int(r["id"]) for r in tx.exec_driver_sql(sql, params)]


def count_bodies_to_erase(tx: Tx, before: float) -> int:
    """Finished messages last changed before ``before`` whose body is still stored."""
    return int(tx.exec_driver_sql(f"SELECT COUNT(*) AS n {_MESSAGES_DUE}", (before,)).scalar() or 0)


def erase_message_bodies(tx: Tx, before: float, now: float, *, limit: int) -> int:
    """Erase the bodies of up to ``limit`` finished messages last changed before ``before``."""
    ids = _ids(tx, f"SELECT id {_MESSAGES_DUE} ORDER BY id LIMIT ?", (before, limit))
    if not ids:
        return 0
    return tx.exec_driver_sql(
        f"UPDATE messages SET body = '', redacted_at = ? WHERE id IN ({placeholders(len(ids))}) "
        "AND redacted_at IS NULL",
        (now, *ids),
    ).rowcount


def count_inbound_to_erase(tx: Tx, before: float) -> int:
    """Handled inbound texts received before ``before`` whose body is still stored."""
    return int(tx.exec_driver_sql(f"SELECT COUNT(*) AS n {_INBOUND_DUE}", (before,)).scalar() or 0)


def erase_inbound_bodies(tx: Tx, before: float, now: float, *, limit: int) -> int:
    """Erase the text (and PDU) of up to ``limit`` inbound messages received before ``before``."""
    ids = _ids(tx, f"SELECT id {_INBOUND_DUE} ORDER BY id LIMIT ?", (before, limit))
    if not ids:
        return 0
    return tx.exec_driver_sql(
        f"UPDATE inbound SET body = '', pdu_hex = NULL, redacted_at = ? WHERE id IN ({placeholders(len(ids))}) "
        "AND redacted_at IS NULL",
        (now, *ids),
    ).rowcount


def count_events_to_prune(tx: Tx, before: float) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM events WHERE at < ?", (before,)).scalar() or 0)


def prune_events(tx: Tx, before: float, *, limit: int) -> int:
    """Delete up to ``limit`` events older than ``before``, oldest first."""
    ids = _ids(tx, "SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?", (before, limit))
    if not ids:
        return 0
    return tx.exec_driver_sql(f"DELETE FROM events WHERE id IN ({placeholders(len(ids))})", tuple(ids)).rowcount


def count_send_log_to_prune(tx: Tx, before: float) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM send_log WHERE at < ?", (before,)).scalar() or 0)


def prune_send_log(tx: Tx, before: float, *, limit: int) -> int:
    """Delete up to ``limit`` send-log rows older than ``before`` (the caller keeps ``before``
    behind the rate caps' longest window)."""
    ids = _ids(tx, "SELECT id FROM send_log WHERE at < ? ORDER BY id LIMIT ?", (before, limit))
    if not ids:
        return 0
    return tx.exec_driver_sql(f"DELETE FROM send_log WHERE id IN ({placeholders(len(ids))})", tuple(ids)).rowcount


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
