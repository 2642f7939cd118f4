"""The Twilio-compatible API's records: credentials (``twilio_credentials``) and the SID,
account and status callback of each message sent through it (``twilio_messages``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.db.engine import Tx
from appliance.db.rows import matching, placeholders

__all__ = [
    "Credential",
    "any_credential",
    "TwilioMessageRow",
    "callback_targets",
    "delete_message",
    "find_credential",
    "get_message",
    "insert_credential",
    "insert_message",
    "list_messages",
    "newest_inbound_id",
    "redact_body",
]


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential with its key's state. ``auth_token`` signs callbacks (module doc of
    :mod:`appliance.twilio`); requests are checked against the digests."""

    account_sid: str
    key_id: str
    auth_token: str
    token_digest: str
    api_key_sid: str
    api_key_digest: str
    scopes: frozenset[str]
    key_name: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class TwilioMessageRow:
    """A message as the Twilio API shows it (``undelivered``: a status report said so)."""

    id: int
    sid: str
    account_sid: str
    status_callback: str | None
    recipient: str
    body: str
    status: str
    parts: int
    modem: str | None
    created_at: float
    updated_at: float
    send_at: float | None
    sent_at: float | None
    error: str | None
    undelivered: bool


_CRED_COLS = ("c.account_sid, c.key_id, c.auth_token, c.token_digest, c.api_key_sid, c.api_key_digest, "
              "k.scopes, k.name, k.revoked_at")


def _cred(r: Any) -> Credential:
    return Credential(
        account_sid=r["account_sid"], key_id=r["key_id"], auth_token=r["auth_token"], token_digest=r["token_digest"],
        api_key_sid=r["api_key_sid"], api_key_digest=r["api_key_digest"],
        scopes=frozenset(s for s in r["scopes"].split(",") if s), key_name=r["name"],
        revoked=r["revoked_at"] is not None,
    )


def insert_credential(tx: Tx, *, account_sid: str, key_id: str, auth_token: str, token_digest: str,
                      api_key_sid: str, api_key_digest: str, now: float) -> None:
    tx.exec_driver_sql(
        "INSERT INTO twilio_credentials (account_sid, key_id, auth_token, token_digest, api_key_sid, "
        "api_key_digest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_sid, key_id, auth_token, token_digest, api_key_sid, api_key_digest, now),
    )


def find_credential(tx: Tx, *, account_sid: str | None = None, api_key_sid: str | None = None) -> Credential | None:
    """The credential with this Account SID or API key SID (revoked ones too), or None."""
    if account_sid is not None:
        where, arg = "c.account_sid = ?", account_sid
    elif api_key_sid is not None:
        where, arg = "c.api_key_sid = ?", api_key_sid
    else:
        return None
    row = tx.exec_driver_sql(
        f"SELECT {_CRED_COLS} FROM twilio_credentials c JOIN api_keys k ON k.id = c.key_id WHERE {where}", (arg,)
    ).first()
    return None if row is None else _cred(row)


def insert_message(tx: Tx, message_id: int, *, sid: str, account_sid: str, status_callback: str | None,
                   now: float) -> None:
    """Record the SID of a message (a repeat of the same message id is left as it was)."""
    tx.exec_driver_sql(
        "INSERT INTO twilio_messages (message_id, sid, account_sid, status_callback, deleted, created_at) "
        "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (message_id) DO NOTHING",
        (message_id, sid, account_sid, status_callback, now),
    )


_MSG_COLS = (
    "m.id, t.sid, t.account_sid, t.status_callback, m.recipient, m.body, m.status, m.parts, m.modem, "
    "m.created_at, m.updated_at, m.send_at, m.sent_at, m.error, "
    "CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.message_id = m.id AND e.kind = 'undelivered') "
    "THEN 1 ELSE 0 END AS undelivered"
)


def _msg(r: Any) -> TwilioMessageRow:
    return TwilioMessageRow(
        id=r["id"], sid=r["sid"], account_sid=r["account_sid"], status_callback=r["status_callback"],
        recipient=r["recipient"], body=r["body"], status=r["status"], parts=r["parts"], modem=r["modem"],
        created_at=r["created_at"], updated_at=r["updated_at"], send_at=r["send_at"], sent_at=r["sent_at"],
        error=r["error"], undelivered=bool(r["undelivered"]),
    )


def get_message(tx: Tx, account_sid: str, sid: str) -> TwilioMessageRow | None:
    """The account's message with this SID (None if unknown, another account's or deleted)."""
    row = tx.exec_driver_sql(
        f"SELECT {_MSG_COLS} FROM twilio_messages t JOIN messages m ON m.id = t.message_id "
        "WHERE t.sid = ? AND t.account_sid = ? AND t.deleted = 0",
        (sid, account_sid),
    ).first()
    return None if row is None else _msg(row)


def list_messages(
    tx: Tx, account_sid: str, *, to: str | None = None, modems: Sequence[str] | None = None,
    sent_from: float | None = None, sent_before: float | None = None,
    before_id: int | None = None, after_id: int | None = None, limit: int = 50,
) -> list[TwilioMessageRow]:
    """The account's messages newest first, filtered; ``before_id`` pages forward,
    ``after_id`` backward (the rows just newer than it, still newest first). The date
    filters read the time it was sent (its creation while unsent)."""
    if modems is not None and not modems:
        return []
    backward = before_id is None and after_id is not None
    where, args = matching(
        ("t.account_sid = ?", account_sid),
        ("m.recipient = ?", to),
        ("COALESCE(m.sent_at, m.created_at) >= ?", sent_from),
        ("COALESCE(m.sent_at, m.created_at) < ?", sent_before),
        ("m.id < ?", before_id),
        ("m.id > ?", after_id if backward else None),
    )
    where.append("t.deleted = 0")
    if modems is not None:
        where.append(f"m.modem IN ({placeholders(len(modems))})")
        args.extend(modems)
    order = "ASC" if backward else "DESC"
    args.append(limit)
    rows = [_msg(r) for r in tx.exec_driver_sql(
        f"SELECT {_MSG_COLS} FROM twilio_messages t JOIN messages m ON m.id = t.message_id "
        f"WHERE {' AND '.join(where)} ORDER BY m.id {order} LIMIT ?",
        tuple(args),
    )]
    return rows if order == "DESC" else rows[::-1]


def redact_body(tx: Tx, message_id: int, now: float) -> bool:
    """Blank the text of a message that is no longer waiting or sending; False if it is."""
    return bool(tx.exec_driver_sql(
        "UPDATE messages SET body = '', updated_at = ? WHERE id = ? AND status NOT IN ('queued', 'sending')",
        (now, message_id),
    ).rowcount)


def delete_message(tx: Tx, message_id: int, now: float) -> bool:
    """Hide a finished message from the Twilio API and blank its text (the appliance keeps
    the row for its audit trail and send log); False while it is waiting or sending."""
    if not redact_body(tx, message_id, now):
        return False
    tx.exec_driver_sql("UPDATE twilio_messages SET deleted = 1 WHERE message_id = ?", (message_id,))
    return True


def callback_targets(tx: Tx, message_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """``message_id → (sid, account_sid, status_callback)`` for those with a callback."""
    if not message_ids:
        return {}
    marks = ", ".join("?" for _ in message_ids)
    return {
        r["message_id"]: (r["sid"], r["account_sid"], r["status_callback"])
        for r in tx.exec_driver_sql(
            f"SELECT message_id, sid, account_sid, status_callback FROM twilio_messages "
            f"WHERE status_callback IS NOT NULL AND message_id IN ({marks})",
            tuple(message_ids),
        )
    }


def newest_inbound_id(tx: Tx) -> int:
    """The largest inbound id (0 when none): where inbound forwarding starts when first set up."""
    value = tx.exec_driver_sql("SELECT MAX(id) AS newest FROM inbound").scalar()
    return 0 if value is None else int(value)


def any_credential(tx: Tx) -> bool:
    """Has any Twilio credential ever been made (is the Twilio side in use)?"""
    return tx.exec_driver_sql("SELECT 1 AS one FROM twilio_credentials LIMIT 1").first() is not None
