"""The audit trail: who changed what, when and from where (``audit_events``).

A line is written in the transaction of the change it describes (:func:`insert_event`
called from the change's own transaction, or queued with
:func:`appliance.db.engine.before_next_commit`), so a rolled-back change leaves no line
and a committed one always has one. ``at`` is the database's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance.db.engine import Tx
from appliance.db.rows import Page, decode_cursor, delete_in, dump_json, encode_cursor, load_json, matching

__all__ = [
    "ACTOR_KINDS",
    "Action",
    "ActorKind",
    "AuditEvent",
    "AuditFilter",
    "count_events_to_prune",
    "insert_event",
    "list_events",
    "prune_events",
]


class ActorKind(StrEnum):
    """Who acted: a web user, an API key, the command line (the OS user), the appliance."""

    USER = "user"
    KEY = "key"
    CLI = "cli"
    SYSTEM = "system"


ACTOR_KINDS = tuple(k.value for k in ActorKind)


class Action(StrEnum):
    """Every change the audit trail records (a closed list: a new one is added here)."""

    MESSAGE_SEND = "message.send"
    MESSAGE_CANCEL = "message.cancel"
    MESSAGE_RESEND = "message.resend"
    BROADCAST_START = "broadcast.start"
    BROADCAST_REQUEST = "broadcast.request"  # a start that waits for an admin's approval
    BROADCAST_APPROVE = "broadcast.approve"
    BROADCAST_REJECT = "broadcast.reject"
    BROADCAST_PAUSE = "broadcast.pause"
    BROADCAST_RESUME = "broadcast.resume"
    BROADCAST_CANCEL = "broadcast.cancel"
    OPTOUT_ADD = "optout.add"
    OPTOUT_REMOVE = "optout.remove"
    CONTACT_CREATE = "contact.create"
    CONTACT_IMPORT = "contact.import"
    CONTACT_UPDATE = "contact.update"
    CONTACT_ERASE = "contact.erase"
    GROUP_CREATE = "group.create"
    GROUP_UPDATE = "group.update"
    GROUP_DELETE = "group.delete"
    GROUP_MEMBERS_ADD = "group.members_add"
    GROUP_MEMBERS_REMOVE = "group.members_remove"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    USER_CREATE = "user.create"
    USER_PASSWORD = "user.password"
    USER_ROLE = "user.role"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    SETTINGS_CHANGE = "settings.change"
    MODEM_PAUSE = "modem.pause"
    MODEM_RESUME = "modem.resume"
    PRIVACY_EXPORT = "privacy.export"
    PRIVACY_ERASE = "privacy.erase"
    RETENTION_RUN = "retention.run"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the trail; ``at`` in UNIX seconds; ``detail`` the decoded JSON (or {})."""

    id: int
    at: float
    actor_kind: str
    actor: str
    address: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What a listing keeps: an exact ``actor`` name, an ``action`` (exact, or a prefix
    ending in ``.`` such as ``broadcast.``), ``since`` ≤ at < ``until``, an exact ``target``."""

    actor: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    target: str | None = None


_COLS = "id, at, actor_kind, actor, address, action, target, detail_json"


def _event(r: Any) -> AuditEvent:
    return AuditEvent(
        id=r["id"], at=r["at"], actor_kind=r["actor_kind"], actor=r["actor"], address=r["address"],
        action=r["action"], target=r["target"], detail=load_json(r["detail_json"]) or {},
    )


def insert_event(
    tx: Tx, *, actor_kind: ActorKind, actor: str, address: str | None, action: Action,
    target: str | None = None, detail: dict[str, Any] | None = None,
) -> int:
    """Append one line (at the database's clock); returns its id."""
    return int(tx.exec_driver_sql(
        "INSERT INTO audit_events (at, actor_kind, actor, address, action, target, detail_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (tx.now(), str(actor_kind), actor, address, str(action), target, dump_json(detail)),
    ).scalar_one())


def list_events(tx: Tx, where: AuditFilter, *, limit: int, cursor: str | None = None) -> Page:
    """Lines matching ``where``, newest first, ``limit`` per page (``cursor`` from the
    previous page; a foreign or garbled one is :class:`InvalidRequest` naming ``cursor``)."""
    after = decode_cursor("audit", cursor)
    prefix = where.action if where.action and where.action.endswith(".") else None
    clauses, params = matching(
        ("id < ?", after),
        ("actor = ?", where.actor or None),
        ("action = ?", None if prefix else where.action or None),
        ("action >= ?", prefix),
        ("action < ?", prefix and prefix[:-1] + "/"),  # '/' sorts right after '.'
        ("at >= ?", where.since),
        ("at < ?", where.until),
        ("target = ?", where.target or None),
    )
    sql = f"SELECT {_COLS} FROM audit_events"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = [_event(r) for r in tx.exec_driver_sql(sql + " ORDER BY id DESC LIMIT ?", (*params, limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor("audit", rows[-1].id) if more and rows else None)


def count_events_to_prune(tx: Tx, before: float) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM audit_events WHERE at < ?", (before,)).scalar_one())


def prune_events(tx: Tx, before: float, *, limit: int) -> int:
    """Delete up to ``limit`` lines older than ``before`` (oldest first); how many."""
    ids = [r["id"] for r in tx.exec_driver_sql(
        "SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?", (before, limit))]
    return delete_in(tx, "audit_events", "id", ids)
