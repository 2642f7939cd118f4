"""Which message goes next, on which modem, and what a send's outcome does to the queue.

Every function here runs inside one short write transaction that the caller opened with
:func:`appliance.db.write_tx` (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the claim's
``FOR UPDATE SKIP LOCKED``), so two workers — of one node or of several — never claim the
same message. The claim order is priority (high, normal, low), then due time (``send_at``,
or the end of a retry's backoff), then age. The state machine (docs/architecture.md):

* a part is committed ``submitting`` (and logged in ``send_log``) before its PDU is written;
* ``+CMGS`` → part ``sent`` (message ``sent`` with its last part);
* a definite refusal or a failure before anything left → retry with backoff, on any modem
  while no part has left, else on the same one; permanent cause or too many attempts →
  ``failed``;
* no answer after the PDU was handed over → part and message ``unknown``, never resent
  silently;
* on start-up (:func:`recover`) parts left ``submitting`` become ``unknown`` and claimed
  messages go back to ``queued`` — a node's own, or a silent node's, taken over by a
  survivor once its lease ran out.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import cast

from appliance.db.engine import Tx
from appliance.db.messages import add_event, ensure_modem
from appliance.db.sticky import Sticky

__all__ = [
    "Backoff",
    "Claim",
    "ClaimedPart",
    "Recovery",
    "begin_part",
    "cancel_broadcast_messages",
    "claim_next",
    "expire_due",
    "hold_broadcast_messages",
    "next_times",
    "part_failed",
    "part_retry",
    "part_sent",
    "part_unknown",
    "recover",
    "release",
]

_LEFT_STATES = ("sent", "delivered", "failed", "unknown")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``n`` waits ``base·2^(n-1)`` (at most
    ``cap``) times a random factor in ``[1 - jitter, 1]``."""

    base_s: float = 5.0
    cap_s: float = 600.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        r = (rng or random).random()
        return raw * (1.0 - self.jitter * r)


@dataclass(slots=True)
class ClaimedPart:
    id: int
    seq: int
    log_id: int | None = None
    submitted_at: float | None = None


@dataclass(slots=True)
class Claim:
    """A message a worker holds (``sending``) and the parts it still has to send."""

    message_id: int
    modem: str
    to: str
    body: str
    total: int
    concat_ref: int
    expires_at: float | None
    attempts: int
    max_attempts: int
    parts: list[ClaimedPart]
    left: int  # parts of this message already handed to the network (before this claim)
    sent_now: int = field(default=0)
    ignore_opt_out: bool = False  # a STOP confirmation goes to a number that just opted out
    sim: str | None = None  # the send log's key for the SIM (ICCID), default the modem's name
    claimed_at: float | None = None  # this claim's mark: a recovered and re-made claim has another
    shift_tables: str | None = None  # national tables it was planned with (ShiftTables.key)

    @property
    def any_left(self) -> bool:
        return self.left + self.sent_now > 0


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :func:`recover` found: messages made ``unknown`` and claims put back."""

    unknown: tuple[int, ...]
    requeued: tuple[int, ...]


def next_concat_ref(conn: Tx, modem: str, now: float) -> int:
    """The next 8-bit concatenation reference of ``modem`` (persisted; wraps at 256)."""
    ensure_modem(conn, modem, now)
    ref = conn.exec_driver_sql(
        "UPDATE modems SET next_concat_ref = (next_concat_ref + 1) % 256 WHERE name = ? "
        "RETURNING (next_concat_ref + 255) % 256",
        (modem,),
    ).scalar_one()
    return int(ref)


def expire_due(conn: Tx, now: float) -> list[int]:
    """Queued messages past their validity become ``expired``."""
    skip = " FOR UPDATE SKIP LOCKED" if conn.postgres else ""
    ids = [r["id"] for r in conn.exec_driver_sql(
        "SELECT id FROM messages INDEXED BY ix_messages_queued_expiry "
        f"WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= ?{skip}",
        (now,),
    )]
    if ids:
        _expire(conn, ids, now)
    return ids


def _expire(conn: Tx, ids: Sequence[int], now: float) -> None:
    conn.exec_driver_sql(
        "UPDATE messages SET status = 'expired', updated_at = ?, claimed_at = NULL, "
        "error = 'not sent before its validity ended' WHERE id = ? AND status = 'queued'",
        [(now, i) for i in ids],
    )
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", [(i,) for i in ids]
    )
    conn.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id) VALUES (?, 'expired', ?)", [(now, i) for i in ids]
    )


def claim_next(conn: Tx, modem: str, *, max_parts: int, now: float, sweep: bool = True,
               marketing: bool = True, sim: str | None = None,
               recipients: Collection[str] | None = None, sticky: Sticky | None = None) -> Claim | None:
    """Claim the next due message ``modem`` may send (at most ``max_parts`` parts).

    Messages pinned to another modem (a part already left through it) are skipped, and so
    are held ones (a paused broadcast's) and, with ``marketing=False`` (quiet hours),
    marketing ones. With ``sweep``, queued messages past their validity are expired first.
    With ``recipients`` only messages to those numbers are taken (a SIM at its monthly cap
    of distinct recipients). With ``sticky`` (sticky sender on), work sticky to
    ``sticky.own`` goes before other work of the same or a lower priority, and work sticky
    to a SIM in ``sticky.holding`` is left to it until it was due at
    ``sticky.released_before`` (docs/architecture.md, "Sticky sender").
    """
    if sweep:
        expire_due(conn, now)
    quiet = "" if marketing else " AND kind != 'marketing'"
    allowed: tuple[str, ...] = ()
    if recipients is not None:
        allowed = tuple(sorted(recipients))
        if not allowed:
            return None
        quiet += f" AND recipient IN ({', '.join('?' * len(allowed))})"
    index = "ix_messages_claim" if marketing else "ix_messages_claim_tx"
    # Another node's claim in progress holds its row: skip it rather than wait for it.
    skip = " FOR UPDATE SKIP LOCKED" if conn.postgres else ""
    columns = ("SELECT id, recipient, body, parts, concat_ref, expires_at, attempts, max_attempts, "
               "ignore_opt_out, shift_tables, priority, sticky_sim FROM messages ")
    due = "status = 'queued' AND held = 0 AND due_at <= ? AND parts <= ? AND (modem IS NULL OR modem = ?)"
    args: tuple[object, ...] = (now, max_parts, modem, *allowed)
    order = f"ORDER BY priority, due_at, id LIMIT 1{skip}"
    if sticky is None:
        row = conn.exec_driver_sql(f"{columns}INDEXED BY {index} WHERE {due}{quiet} {order}", args).first()
    else:
        # One round trip: the head of the SIM's own sticky work and the head of the rest.
        leave, leave_args = "", cast(tuple[object, ...], ())
        if sticky.holding:
            # A message pinned to this modem (a part left, or asked for) is its own whatever its mark.
            leave = (" AND (sticky_sim IS NULL OR modem IS NOT NULL OR due_at <= ? OR sticky_sim NOT IN "
                     f"({', '.join('?' * len(sticky.holding))}))")
            leave_args = (sticky.released_before, *sticky.holding)
        heads = conn.exec_driver_sql(
            f"SELECT own.*, 1 AS mine FROM ({columns}INDEXED BY ix_messages_sticky WHERE sticky_sim = ? "
            f"AND sticky_sim IS NOT NULL AND {due}{quiet} {order}) AS own UNION ALL "
            f"SELECT rest.*, 0 AS mine FROM ({columns}INDEXED BY {index} WHERE {due}{quiet}{leave} {order}) AS rest",
            (sticky.own, *args, *args, *leave_args),
        ).all()
        own = next((r for r in heads if r["mine"]), None)
        rest = next((r for r in heads if not r["mine"]), None)
        # Only more urgent work goes before the SIM's own people.
        row = rest if own is None or (rest is not None and rest["priority"] < own["priority"]) else own
    if row is None:
        return None
    mid, total, ref = row["id"], row["parts"], row["concat_ref"]
    rows = conn.exec_driver_sql(
        "SELECT id, seq, state FROM parts WHERE message_id = ? ORDER BY seq", (mid,)
    ).all()
    if not rows:
        values = ", ".join(["(?, ?, 'queued')"] * total)
        args = tuple(x for s in range(1, total + 1) for x in (mid, s))
        rows = sorted(
            conn.exec_driver_sql(
                f"INSERT INTO parts (message_id, seq, state) VALUES {values} RETURNING id, seq, state", args
            ).all(),
            key=lambda r: r["seq"],
        )
    left = sum(1 for r in rows if r["state"] in _LEFT_STATES)
    if left == 0 or ref is None:
        ref = next_concat_ref(conn, modem, now) if total > 1 else 0
    conn.exec_driver_sql(
        "UPDATE messages SET status = 'sending', modem = ?, claimed_at = ?, concat_ref = ?, updated_at = ? "
        "WHERE id = ?",
        (modem, now, ref, now, mid),
    )
    return Claim(
        message_id=mid, modem=modem, to=row["recipient"], body=row["body"], total=total, concat_ref=ref,
        expires_at=row["expires_at"], attempts=row["attempts"], max_attempts=row["max_attempts"],
        parts=[ClaimedPart(r["id"], r["seq"]) for r in rows if r["state"] == "queued"], left=left,
        ignore_opt_out=bool(row["ignore_opt_out"]), sim=sim, claimed_at=now,
        shift_tables=row["shift_tables"] or None,
    )


def _finish_message(conn: Tx, claim: Claim, status: str, now: float, error: str | None,
                    *, kind: str, part_id: int | None = None) -> None:
    conn.exec_driver_sql(
        "UPDATE messages SET status = ?, error = ?, updated_at = ?, claimed_at = NULL WHERE id = ?",
        (status, error, now, claim.message_id),
    )
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", (claim.message_id,)
    )
    add_event(conn, now, kind, claim.message_id, part_id=part_id, modem=claim.modem,
              detail={"error": error} if error else None)


def begin_part(conn: Tx, claim: Claim, part: ClaimedPart, now: float) -> str:
    """Commit ``part`` as ``submitting`` and log the send; returns ``"go"``, or why not.

    Before the first part of a message leaves, the opt-out list and the validity are checked
    again: ``"suppressed"``/``"expired"`` end the message. ``"gone"`` means the message is no
    longer this claim's to send (e.g. a failed status report ended it).
    """
    if not claim.any_left:
        # The opt-out check and the "submitting" commit in one transaction, under the same
        # lock as an opt-out of this number (on every node).
        conn.lock(f"number:{claim.to}")
        row = conn.exec_driver_sql(
            "SELECT status, EXISTS (SELECT 1 FROM opt_outs WHERE number = ?) AS opted_out FROM messages WHERE id = ?",
            (claim.to, claim.message_id),
        ).first()
        if row is None or row["status"] != "sending":
            return "gone"
        if not claim.ignore_opt_out and row["opted_out"]:
            _finish_message(conn, claim, "suppressed", now, "recipient opted out", kind="suppressed")
            return "suppressed"
        if claim.expires_at is not None and claim.expires_at <= now:
            _finish_message(conn, claim, "expired", now, "not sent before its validity ended", kind="expired")
            return "expired"
    # Still this claim's (not recovered by a survivor meanwhile and claimed again).
    marked = conn.exec_driver_sql(
        "UPDATE parts SET state = 'submitting', modem = ?, submitted_at = ?, error = NULL "
        "WHERE id = ? AND state = 'queued' AND EXISTS "
        "(SELECT 1 FROM messages WHERE id = ? AND status = 'sending' AND modem = ? AND claimed_at = ?)",
        (claim.modem, now, part.id, claim.message_id, claim.modem, claim.claimed_at),
    ).rowcount
    if not marked:
        return "gone"
    part.log_id = conn.exec_driver_sql(
        "INSERT INTO send_log (modem, sim, at, message_id, part_id) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (claim.modem, claim.sim or claim.modem, now, claim.message_id, part.id),
    ).scalar_one()
    part.submitted_at = now
    return "go"


def part_sent(conn: Tx, claim: Claim, part: ClaimedPart, mr: int, now: float) -> bool:
    """The modem answered ``+CMGS: mr``. Returns True when the message is now ``sent``."""
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'sent', mr = ?, sent_at = ? WHERE id = ?", (mr, now, part.id)
    )
    if part.log_id is not None:
        # The answer's time bounds when the part really left: windows count from it.
        conn.exec_driver_sql("UPDATE send_log SET at = ? WHERE id = ?", (now, part.log_id))
    claim.sent_now += 1
    if claim.left + claim.sent_now < claim.total:
        return False
    done = conn.exec_driver_sql(
        "UPDATE messages SET status = 'sent', sent_at = ?, updated_at = ?, claimed_at = NULL, error = NULL "
        "WHERE id = ? AND status = 'sending'",
        (now, now, claim.message_id),
    ).rowcount
    if done:  # one row per message (not per part): status webhooks are made from events
        add_event(conn, now, "sent", claim.message_id, modem=claim.modem)
    return bool(done)


def part_unknown(conn: Tx, claim: Claim, part: ClaimedPart, now: float, error: str) -> None:
    """The PDU was handed over but no answer came: part and message ``unknown``."""
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'unknown', error = ? WHERE id = ?", (error, part.id)
    )
    _finish_message(conn, claim, "unknown", now, error, kind="unknown", part_id=part.id)


def part_failed(conn: Tx, claim: Claim, part: ClaimedPart | None, now: float, error: str) -> None:
    """A permanent refusal (or an unsendable message): part and message ``failed``."""
    if part is not None:
        conn.exec_driver_sql(
            "UPDATE parts SET state = 'failed', error = ? WHERE id = ?", (error, part.id)
        )
        if part.log_id is not None:
            conn.exec_driver_sql("DELETE FROM send_log WHERE id = ?", (part.log_id,))
    _finish_message(conn, claim, "failed", now, error, kind="failed", part_id=part.id if part else None)


def _put_back(conn: Tx, claim: Claim, now: float, *, due_at: float | None, attempts: int) -> None:
    pinned = claim.any_left
    if conn.postgres:  # the broadcast's row before the message's, in the order a pause takes them
        conn.exec_driver_sql(
            "SELECT b.id FROM messages m JOIN broadcasts b ON b.id = m.broadcast_id WHERE m.id = ? FOR SHARE OF b",
            (claim.message_id,),
        )
    conn.exec_driver_sql(
        "UPDATE messages SET status = 'queued', claimed_at = NULL, attempts = ?, updated_at = ?, "
        "due_at = COALESCE(?, due_at), modem = ?, concat_ref = ? WHERE id = ?",
        (attempts, now, due_at, claim.modem if pinned else None, claim.concat_ref if pinned else None,
         claim.message_id),
    )
    follow_broadcast(conn, [claim.message_id], now)


def follow_broadcast(conn: Tx, message_ids: Sequence[int], now: float) -> None:
    """Messages just put back in the queue take their broadcast's state: held while it is
    paused, cancelled once it is cancelled (they were sending when it changed)."""
    for mid in message_ids:
        # On PostgreSQL a pause committing meanwhile must not be missed: read under its row lock.
        share = " FOR SHARE OF b" if conn.postgres else ""
        state = conn.exec_driver_sql(
            f"SELECT b.status FROM messages m JOIN broadcasts b ON b.id = m.broadcast_id WHERE m.id = ?{share}", (mid,)
        ).scalar()
        if state == "paused":
            conn.exec_driver_sql("UPDATE messages SET held = 1 WHERE id = ? AND status = 'queued'", (mid,))
        elif state == "cancelled":
            _cancel_queued(conn, [mid], now, {"by": "broadcast cancelled"})


def _cancel_queued(conn: Tx, ids: Sequence[int], now: float, detail: object) -> None:
    conn.exec_driver_sql(
        "UPDATE messages SET status = 'cancelled', held = 0, updated_at = ?, error = 'cancelled' "
        "WHERE id = ? AND status = 'queued'",
        [(now, i) for i in ids],
    )
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", [(i,) for i in ids]
    )
    text = json.dumps(detail)
    conn.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id, detail) VALUES (?, 'cancelled', ?, ?)",
        [(now, i, text) for i in ids],
    )


def hold_broadcast_messages(conn: Tx, broadcast_id: int, *, held: bool) -> int:
    """Hold (pause) or release (resume) the queued messages of a broadcast; returns how many."""
    return conn.exec_driver_sql(
        "UPDATE messages SET held = ? WHERE broadcast_id = ? AND status = 'queued' AND held = ?",
        (int(held), broadcast_id, int(not held)),
    ).rowcount


def cancel_broadcast_messages(conn: Tx, broadcast_id: int, now: float, *, by: str) -> int:
    """Cancel every queued message of a broadcast (those sending finish); returns how many."""
    ids = [r["id"] for r in conn.exec_driver_sql(
        "SELECT id FROM messages WHERE broadcast_id = ? AND status = 'queued'", (broadcast_id,)
    )]
    if ids:
        _cancel_queued(conn, ids, now, {"by": by, "broadcast_id": broadcast_id})
    return len(ids)


def part_retry(conn: Tx, claim: Claim, part: ClaimedPart, now: float, error: str, *,
               delay: float, forget_send: bool) -> str:
    """A temporary failure: back to the queue after ``delay`` (``"queued"``), or
    ``"failed"`` once the message used its attempts. ``forget_send`` drops the send-log
    entry (nothing reached the network)."""
    if forget_send and part.log_id is not None:
        conn.exec_driver_sql("DELETE FROM send_log WHERE id = ?", (part.log_id,))
        part.log_id = None
    attempts = claim.attempts + 1
    if attempts >= claim.max_attempts:
        conn.exec_driver_sql("UPDATE messages SET attempts = ? WHERE id = ?", (attempts, claim.message_id))
        part_failed(conn, claim, part, now, f"gave up after {attempts} attempts; last error: {error}")
        return "failed"
    conn.exec_driver_sql(
        "UPDATE parts SET state = 'queued', modem = NULL, submitted_at = NULL, error = ? WHERE id = ?",
        (error, part.id),
    )
    _put_back(conn, claim, now, due_at=now + delay, attempts=attempts)
    # The SIM the recipient knows just refused it: the retry may go through any SIM rather
    # than spend every attempt on that one (sticky sender is a preference).
    conn.exec_driver_sql("UPDATE messages SET sticky_sim = NULL WHERE id = ? AND sticky_sim IS NOT NULL",
                         (claim.message_id,))
    add_event(conn, now, "retry", claim.message_id, part_id=part.id, modem=claim.modem,
              detail={"error": error, "attempt": attempts, "delay_s": round(delay, 3)})
    return "queued"


def release(conn: Tx, claim: Claim, now: float, reason: str, *, part: ClaimedPart | None = None) -> None:
    """Give a claim back without counting an attempt (shutdown, modem went away before
    anything left). ``part``, if given, had been marked ``submitting`` but nothing left."""
    if part is not None:
        conn.exec_driver_sql(
            "UPDATE parts SET state = 'queued', modem = NULL, submitted_at = NULL WHERE id = ?", (part.id,)
        )
        if part.log_id is not None:
            conn.exec_driver_sql("DELETE FROM send_log WHERE id = ?", (part.log_id,))
    _put_back(conn, claim, now, due_at=None, attempts=claim.attempts)
    add_event(conn, now, "released", claim.message_id, modem=claim.modem, detail={"reason": reason})


def recover(conn: Tx, now: float, *, modems: Sequence[str] | None = None, by: str = "start-up") -> Recovery:
    """``submitting`` parts → ``unknown`` (and their messages); other claims → queue.

    ``modems`` limits it to the work of those modems (one node's, on a shared database);
    None recovers everything (one appliance on its own file). ``by`` goes in the events.
    """
    scope, args = "", ()
    if modems is not None:
        if not modems:
            return Recovery(unknown=(), requeued=())
        scope = f" AND modem IN ({', '.join('?' * len(modems))})"
        args = tuple(modems)
    skip = " FOR UPDATE" if conn.postgres else ""
    stuck = conn.exec_driver_sql(
        f"SELECT id, message_id, modem FROM parts WHERE state = 'submitting'{scope}{skip}", args
    ).all()
    unknown = sorted({r["message_id"] for r in stuck})
    error = "the appliance stopped while this part was being handed to the modem; it may have been sent"
    if stuck:
        conn.exec_driver_sql(
            "UPDATE parts SET state = 'unknown', error = ? WHERE id = ?", [(error, r["id"]) for r in stuck]
        )
        conn.exec_driver_sql(
            "UPDATE messages SET status = 'unknown', error = ?, updated_at = ?, claimed_at = NULL WHERE id = ?",
            [(error, now, m) for m in unknown],
        )
        conn.exec_driver_sql(
            "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'",
            [(m,) for m in unknown],
        )
        conn.exec_driver_sql(
            "INSERT INTO events (at, kind, message_id, part_id, modem, detail) VALUES (?, 'unknown', ?, ?, ?, ?)",
            [(now, r["message_id"], r["id"], r["modem"], json.dumps({"error": error, "at": by})) for r in stuck],
        )
    claimed = [r["id"] for r in conn.exec_driver_sql(
        f"SELECT id FROM messages WHERE status = 'sending'{scope}{skip}", args
    )]
    if claimed:
        # Pinned (keeps modem and concat ref) when a part already left, else free to any modem.
        conn.exec_driver_sql(
            "UPDATE messages SET status = 'queued', claimed_at = NULL, updated_at = ?, "
            "modem = CASE WHEN EXISTS (SELECT 1 FROM parts p WHERE p.message_id = messages.id "
            "AND p.state IN ('sent', 'delivered', 'failed', 'unknown')) THEN modem ELSE NULL END, "
            "concat_ref = CASE WHEN EXISTS (SELECT 1 FROM parts p WHERE p.message_id = messages.id "
            "AND p.state IN ('sent', 'delivered', 'failed', 'unknown')) THEN concat_ref ELSE NULL END "
            "WHERE id = ? AND status = 'sending'",
            [(now, m) for m in claimed],
        )
        conn.exec_driver_sql(
            "INSERT INTO events (at, kind, message_id, detail) VALUES (?, 'requeued', ?, ?)",
            [(now, m, json.dumps({"at": by})) for m in claimed],
        )
        follow_broadcast(conn, claimed, now)
    return Recovery(unknown=tuple(unknown), requeued=tuple(claimed))


def next_times(tx: Tx, modem: str, *, transactional_only: bool,
               sticky: Sticky | None = None) -> tuple[float | None, bool, float | None]:
    """``(due, marketing_waits, expiry)`` of the queued work ``modem`` could take: the
    earliest due time (of transactional work only, inside quiet hours), whether marketing
    work waits (asked only then) and the earliest expiry. Held messages are not work.
    With ``sticky``, work left to a holding SIM counts from when it is released."""
    holding = sticky.holding if sticky is not None else ()
    leave = ""
    if holding:  # the claim leaves it to its SIM for now; its release is counted below
        leave = (" AND (sticky_sim IS NULL OR modem IS NOT NULL OR sticky_sim NOT IN "
                 f"({', '.join('?' * len(holding))}))")
    if transactional_only:  # few rows at night, whatever waits for morning
        due = tx.exec_driver_sql(
            "SELECT MIN(due_at) FROM messages INDEXED BY ix_messages_claim_tx "
            f"WHERE status = 'queued' AND held = 0 AND kind != 'marketing' AND (modem IS NULL OR modem = ?){leave}",
            (modem, *holding),
        ).scalar()
        marketing_waits = tx.exec_driver_sql(
            "SELECT 1 FROM messages INDEXED BY ix_messages_queued_due "
            "WHERE status = 'queued' AND held = 0 AND kind = 'marketing' AND (modem IS NULL OR modem = ?) "
            "LIMIT 1", (modem,)
        ).first() is not None
    else:
        due = tx.exec_driver_sql(
            "SELECT due_at FROM messages INDEXED BY ix_messages_queued_due "
            f"WHERE status = 'queued' AND held = 0 AND (modem IS NULL OR modem = ?){leave} "
            "ORDER BY due_at LIMIT 1", (modem, *holding)
        ).scalar()
        marketing_waits = False
    if holding and sticky is not None:
        kind = " AND kind != 'marketing'" if transactional_only else ""
        left = tx.exec_driver_sql(
            "SELECT MIN(due_at) FROM messages INDEXED BY ix_messages_sticky "
            f"WHERE sticky_sim IN ({', '.join('?' * len(holding))}) AND sticky_sim IS NOT NULL "
            f"AND status = 'queued' AND held = 0 AND modem IS NULL{kind}",
            holding,
        ).scalar()
        if left is not None:
            release = left + sticky.wait_s  # anyone's once it waited that long
            due = release if due is None else min(due, release)
    exp = tx.exec_driver_sql(
        "SELECT expires_at FROM messages INDEXED BY ix_messages_queued_expiry "
        "WHERE status = 'queued' AND expires_at IS NOT NULL ORDER BY expires_at LIMIT 1"
    ).scalar()
    return due, marketing_waits, exp
