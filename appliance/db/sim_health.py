"""SIM health (table ``modem_health``): which modems are paused, why, since when, when their
next probe is due; and the ``modem.paused`` / ``modem.resumed`` events (no message; the
webhook outbox sends them on, like ``modem.balance_low``).

One row per modem that was ever paused. Writers run in the caller's write transaction; on
PostgreSQL the row is read ``FOR UPDATE`` so a probe and an admin resuming at once (on two
nodes) make one ``modem.resumed`` event.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from appliance.db.engine import Tx

__all__ = [
    "MODEM_PAUSED",
    "MODEM_RESUMED",
    "HealthRow",
    "clear_probation",
    "get",
    "list_rows",
    "pause",
    "resume",
]

MODEM_PAUSED = "modem.paused"
"""The ``events`` kind of a modem paused by its health check or an admin."""
MODEM_RESUMED = "modem.resumed"
"""The ``events`` kind of a paused modem resumed by its probe or an admin."""

_COLS = ("modem, paused, reason, code, paused_by, paused_at, probe_at, strikes, probation, resumed_by, "
         "resumed_at, updated_at")


@dataclass(frozen=True, slots=True)
class HealthRow:
    """One modem's health state (see the module doc and ``ModemHealthRecord``)."""

    modem: str
    paused: bool
    reason: str | None
    code: int | None
    paused_by: str | None
    paused_at: float | None
    probe_at: float | None
    strikes: int
    probation: bool
    resumed_by: str | None
    resumed_at: float | None
    updated_at: float


def _row(r: Any) -> HealthRow:
    return HealthRow(
        modem=r["modem"], paused=bool(r["paused"]), reason=r["reason"], code=r["code"], paused_by=r["paused_by"],
        paused_at=r["paused_at"], probe_at=r["probe_at"], strikes=int(r["strikes"]), probation=bool(r["probation"]),
        resumed_by=r["resumed_by"], resumed_at=r["resumed_at"], updated_at=r["updated_at"],
    )


def get(tx: Tx, modem: str, *, lock: bool = False) -> HealthRow | None:
    """``modem``'s row (None: never paused); ``lock`` holds it until the transaction ends."""
    suffix = " FOR UPDATE" if lock and tx.postgres else ""
    r = tx.exec_driver_sql(f"SELECT {_COLS} FROM modem_health WHERE modem = ?{suffix}", (modem,)).first()
    return _row(r) if r is not None else None


def list_rows(tx: Tx, modems: Collection[str] | None = None) -> dict[str, HealthRow]:
    """The rows of ``modems`` (all when None), by modem name."""
    if modems is not None:
        names = tuple(modems)
        if not names:
            return {}
        rows = tx.exec_driver_sql(
            f"SELECT {_COLS} FROM modem_health WHERE modem IN ({', '.join('?' * len(names))})", names).all()
    else:
        rows = tx.exec_driver_sql(f"SELECT {_COLS} FROM modem_health").all()
    return {r["modem"]: _row(r) for r in rows}


def _event(tx: Tx, kind: str, modem: str, at: float, detail: dict[str, Any]) -> None:
    tx.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id, modem, detail) VALUES (?, ?, NULL, ?, ?)",
        (at, kind, modem, json.dumps(detail)),
    )


def pause(tx: Tx, modem: str, *, reason: str, code: int | None, by: str, now: float,
          probe_at: float | None, strikes: int, detail: dict[str, Any]) -> HealthRow:
    """Pause ``modem`` (or pause it again: a failed probe) and write ``modem.paused`` with
    ``detail`` (counts, cool-down) added to the reason."""
    tx.exec_driver_sql(
        "INSERT INTO modem_health (modem, paused, reason, code, paused_by, paused_at, probe_at, strikes, probation, "
        "updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (modem) DO UPDATE SET paused = 1, "
        "reason = excluded.reason, code = excluded.code, paused_by = excluded.paused_by, "
        "paused_at = excluded.paused_at, probe_at = excluded.probe_at, strikes = excluded.strikes, probation = 0, "
        "updated_at = excluded.updated_at",
        (modem, reason, code, by, now, probe_at, strikes, now),
    )
    _event(tx, MODEM_PAUSED, modem, now, {"reason": reason, "code": code, "by": by, **detail})
    row = get(tx, modem)
    assert row is not None
    return row


def resume(tx: Tx, modem: str, *, by: str, now: float, probation: bool) -> HealthRow | None:
    """Resume a paused ``modem`` and write ``modem.resumed``; None when it was not paused.
    ``probation``: its first send decides (a probe resumed it); else its strikes are cleared."""
    before = get(tx, modem, lock=True)
    if before is None or not before.paused:
        return None
    tx.exec_driver_sql(
        "UPDATE modem_health SET paused = 0, probe_at = NULL, probation = ?, resumed_by = ?, resumed_at = ?, "
        "strikes = CASE WHEN ? = 1 THEN strikes ELSE 0 END, updated_at = ? WHERE modem = ?",
        (int(probation), by, now, int(probation), now, modem),
    )
    paused_for = None if before.paused_at is None else round(max(0.0, now - before.paused_at), 3)
    _event(tx, MODEM_RESUMED, modem, now, {"by": by, "reason": before.reason, "paused_for_s": paused_for})
    return get(tx, modem)


def clear_probation(tx: Tx, modem: str, now: float) -> None:
    """A send after a probe went through: the SIM is healthy again (strikes cleared)."""
    tx.exec_driver_sql(
        "UPDATE modem_health SET probation = 0, strikes = 0, updated_at = ? WHERE modem = ? AND paused = 0",
        (now, modem),
    )
