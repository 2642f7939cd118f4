"""Received SMS: stored once per PDU, multipart fragments waiting for their siblings,
keyword handling state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.db.engine import Tx
from appliance.db.errors import InvalidState, NotFound
from appliance.db.messages import newest_first
from appliance.db.rows import Page, as_datetime, load_json

__all__ = [
    "InboundFragmentView",
    "InboundView",
    "StoredInbound",
    "get_inbound",
    "list_inbound",
    "list_unhandled",
    "mark_handled",
    "prune_consumed_pdus",
    "record_inbound",
    "stale_fragment_groups",
    "store_fragment",
    "store_inbound",
]


@dataclass(frozen=True, slots=True)
class InboundView:
    id: int
    modem: str
    sender: str
    body: str
    received_at: datetime
    parts: int
    metadata: dict[str, Any] | None
    complete: bool = True  # False: parts were missing when the reassembly timeout passed
    keyword: str | None = None  # stop / start / help when the text was one


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """An inbound row as the inbound handler sees it (times in UNIX seconds).

    ``created`` is False when the row was already there (the same PDU read again).
    """

    id: int
    modem: str
    sender: str
    body: str
    received_at: float
    parts: int
    complete: bool
    keyword: str | None
    handled_at: float | None
    metadata: dict[str, Any] | None
    digest: str | None
    created: bool = False


@dataclass(frozen=True, slots=True)
class InboundFragmentView:
    """One stored part of a multipart SMS waiting for its siblings."""

    id: int
    modem: str
    sender: str
    ref: int
    total: int
    seq: int
    body: str
    digest: str
    received_at: float


_INBOUND_COLS = "id, modem, sender, body, received_at, parts, complete, keyword, handled_at, metadata_json, digest"
_FRAGMENT_COLS = "id, modem, sender, ref, total, seq, body, digest, received_at"


def _stored(r: Any, created: bool) -> StoredInbound:
    return StoredInbound(
        id=r["id"], modem=r["modem"], sender=r["sender"], body=r["body"], received_at=r["received_at"],
        parts=r["parts"], complete=bool(r["complete"]), keyword=r["keyword"], handled_at=r["handled_at"],
        metadata=load_json(r["metadata_json"]), digest=r["digest"], created=created,
    )


def _fragment(r: Any) -> InboundFragmentView:
    return InboundFragmentView(
        id=r["id"], modem=r["modem"], sender=r["sender"], ref=r["ref"], total=r["total"], seq=r["seq"],
        body=r["body"], digest=r["digest"], received_at=r["received_at"],
    )


def record_inbound(tx: Tx, modem: str, sender: str, body: str, at: float, *, parts: int, pdu_hex: str | None,
                   metadata_json: str | None) -> int:
    """Store an already reassembled SMS; its id."""
    return int(tx.exec_driver_sql(
        "INSERT INTO inbound (modem, sender, body, received_at, parts, pdu_hex, metadata_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (modem, sender, body, at, parts, pdu_hex, metadata_json),
    ).scalar_one())


def store_inbound(
    tx: Tx, modem: str, sender: str, body: str, *, digest: str, at: float, parts: int, complete: bool,
    keyword: str | None, handled: bool, pdu_hex: str | None, metadata_json: str | None,
    fragments: Sequence[InboundFragmentView],
) -> StoredInbound:
    """Store a received SMS once per ``digest`` (a repeat returns the first row,
    ``created=False``); the ``fragments`` it was made from are consumed in the same
    transaction and their digests remembered, so a re-read of one of them is ignored."""
    new_id = tx.exec_driver_sql(
        "INSERT INTO inbound (modem, sender, body, received_at, parts, pdu_hex, metadata_json, digest, "
        "complete, keyword, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(digest) DO NOTHING RETURNING id",
        (modem, sender, body, at, parts, pdu_hex, metadata_json, digest, int(complete), keyword,
         at if handled else None),
    ).scalar()
    created = new_id is not None
    if not created:
        new_id = tx.exec_driver_sql("SELECT id FROM inbound WHERE digest = ?", (digest,)).scalar()
    if fragments:
        ids = [f.id for f in fragments]
        marks = ",".join("?" * len(ids))
        gone = tx.exec_driver_sql(f"DELETE FROM inbound_fragments WHERE id IN ({marks})", tuple(ids)).rowcount
        if created and gone != len(ids):
            raise InvalidState("the parts of this multipart message were already taken by another reassembly")
        tx.exec_driver_sql(
            "INSERT INTO inbound_pdus (digest, inbound_id, received_at) VALUES (?, ?, ?) "
            "ON CONFLICT(digest) DO NOTHING",
            [(f.digest, new_id, at) for f in fragments],
        )
    row = tx.exec_driver_sql(f"SELECT {_INBOUND_COLS} FROM inbound WHERE id = ?", (new_id,)).first()
    return _stored(row, created)


def _group(tx: Tx, modem: str, sender: str, ref: int, total: int) -> list[InboundFragmentView]:
    rows = tx.exec_driver_sql(
        f"SELECT {_FRAGMENT_COLS} FROM inbound_fragments "
        "WHERE sender = ? AND ref = ? AND total = ? AND modem = ? ORDER BY seq, id",
        (sender, ref, total, modem),
    ).all()
    return [_fragment(r) for r in rows]


def store_fragment(
    tx: Tx, modem: str, sender: str, *, ref: int, total: int, seq: int, body: str, pdu_hex: str, digest: str,
    at: float,
) -> list[InboundFragmentView] | None:
    """Keep one part (once per ``digest``); the group's parts so far, or None when this PDU
    already went into a stored message."""
    if tx.exec_driver_sql("SELECT 1 FROM inbound_pdus WHERE digest = ?", (digest,)).first():
        return None
    tx.lock(f"fragments:{modem}:{sender}:{ref}:{total}")
    tx.exec_driver_sql(
        "INSERT INTO inbound_fragments (modem, sender, ref, total, seq, body, pdu_hex, digest, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING",
        (modem, sender, ref, total, seq, body, pdu_hex, digest, at),
    )
    return _group(tx, modem, sender, ref, total)


def stale_fragment_groups(tx: Tx, before: float) -> list[list[InboundFragmentView]]:
    """Groups of stored parts whose first part arrived before ``before`` (seq order)."""
    keys = tx.exec_driver_sql(
        "SELECT modem, sender, ref, total FROM inbound_fragments "
        "GROUP BY modem, sender, ref, total HAVING MIN(received_at) < ?",
        (before,),
    ).all()
    return [_group(tx, k["modem"], k["sender"], k["ref"], k["total"]) for k in keys]


def get_inbound(tx: Tx, inbound_id: int) -> StoredInbound:
    """One inbound row with its handling state; :class:`NotFound` if there is none."""
    row = tx.exec_driver_sql(f"SELECT {_INBOUND_COLS} FROM inbound WHERE id = ?", (inbound_id,)).first()
    if row is None:
        raise NotFound(f"inbound message {inbound_id} does not exist")
    return _stored(row, False)


def list_unhandled(tx: Tx, *, limit: int) -> list[StoredInbound]:
    """Inbound rows whose keyword actions are not recorded as done, oldest first."""
    rows = tx.exec_driver_sql(
        f"SELECT {_INBOUND_COLS} FROM inbound INDEXED BY ix_inbound_unhandled "
        "WHERE handled_at IS NULL ORDER BY id LIMIT ?",
        (limit,),
    ).all()
    return [_stored(r, False) for r in rows]


def mark_handled(tx: Tx, inbound_id: int, at: float) -> bool:
    """Record that the keyword actions of ``inbound_id`` are done; False if they already were."""
    return bool(tx.exec_driver_sql(
        "UPDATE inbound SET handled_at = ? WHERE id = ? AND handled_at IS NULL", (at, inbound_id)
    ).rowcount)


def prune_consumed_pdus(tx: Tx, before: float) -> int:
    """Forget digests of parts consumed before ``before`` (a re-read comes within days)."""
    return tx.exec_driver_sql("DELETE FROM inbound_pdus WHERE received_at < ?", (before,)).rowcount


def list_inbound(tx: Tx, *, limit: int, cursor: str | None, sender: str | None) -> Page:
    """Received messages, newest first."""
    rows, nxt = newest_first(
        tx, "SELECT id, modem, sender, body, received_at, parts, metadata_json, complete, keyword FROM inbound",
        "i", {"sender": sender}, limit, cursor,
    )
    return Page([
        InboundView(r["id"], r["modem"], r["sender"], r["body"], as_datetime(r["received_at"]), r["parts"],  # type: ignore[arg-type]
                    load_json(r["metadata_json"]), bool(r["complete"]), r["keyword"])
        for r in rows
    ], nxt)
