"""Sticky sender: the SIM a number knows, and the SIMs other nodes have online.

A number *knows* the SIM that last texted it (its newest ``send_log`` row, through the
message) or that it last wrote to (its newest ``inbound`` row), whichever is more recent.
SIMs are the send log's keys: the ICCID, or the modem's name while the modem has not told
it. An inbound row notes its SIM when stored (:func:`note_inbound_sim`); older rows fall
back to the SIM their modem holds now. docs/architecture.md, "Sticky sender".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.db.engine import Tx

__all__ = ["Sticky", "last_sims", "note_inbound_sim", "online_sims"]

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Sticky:
    """How a claim treats sticky work (:func:`appliance.db.sending.claim_next`).

    ``own`` is the claiming worker's SIM: its sticky work goes first. Work sticky to one of
    ``holding`` (other SIMs online and within their caps) waits for that SIM for at most
    ``wait_s`` after it was due (``released_before`` is now − ``wait_s``): then anyone's.
    """

    own: str
    holding: tuple[str, ...] = ()
    released_before: float = float("-inf")
    wait_s: float = 0.0


def _newest(found: dict[str, tuple[float, str]], rows: Iterable[object]) -> None:
    for r in rows:
        number, sim, at = r["number"], r["sim"], r["at"]  # type: ignore[index]
        if sim is None or at is None:
            continue
        old = found.get(number)
        if old is None or at > old[0]:
            found[number] = (float(at), sim)


def last_sims(tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
    """The SIM each of ``numbers`` knows (numbers with no history are left out)."""
    unique = list(dict.fromkeys(numbers))
    found: dict[str, tuple[float, str]] = {}
    if not unique:
        return {}
    if tx.postgres:  # one array parameter instead of thousands of placeholders
        _newest(found, tx.exec_driver_sql(
            "SELECT DISTINCT ON (m.recipient) m.recipient AS number, COALESCE(s.sim, s.modem) AS sim, s.at AS at "
            "FROM messages m JOIN send_log s ON s.message_id = m.id WHERE m.recipient = ANY(?) "
            "ORDER BY m.recipient, s.at DESC", (unique,)))
        _newest(found, tx.exec_driver_sql(
            "SELECT DISTINCT ON (i.sender) i.sender AS number, COALESCE(i.sim, d.iccid, i.modem) AS sim, "
            "i.received_at AS at FROM inbound i LEFT JOIN modems d ON d.name = i.modem "
            "WHERE i.sender = ANY(?) ORDER BY i.sender, i.received_at DESC", (unique,)))
    else:
        for start in range(0, len(unique), _CHUNK):
            chunk = tuple(unique[start:start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            # SQLite takes the bare columns of a MAX() query from the row holding the maximum.
            _newest(found, tx.exec_driver_sql(
                "SELECT m.recipient AS number, COALESCE(s.sim, s.modem) AS sim, MAX(s.at) AS at "
                "FROM messages m INDEXED BY ix_messages_recipient_id "
                "JOIN send_log s INDEXED BY ix_send_log_message ON s.message_id = m.id "
                f"WHERE m.recipient IN ({marks}) GROUP BY m.recipient", chunk))
            _newest(found, tx.exec_driver_sql(
                "SELECT i.sender AS number, COALESCE(i.sim, (SELECT d.iccid FROM modems d WHERE d.name = i.modem), "
                "i.modem) AS sim, MAX(i.received_at) AS at FROM inbound i INDEXED BY ix_inbound_sender "
                f"WHERE i.sender IN ({marks}) GROUP BY i.sender", chunk))
    return {number: sim for number, (_, sim) in found.items()}


def note_inbound_sim(tx: Tx, inbound_id: int, modem: str) -> None:
    """Remember which SIM inbound row ``inbound_id`` reached: the one ``modem`` holds now."""
    tx.exec_driver_sql(
        "UPDATE inbound SET sim = COALESCE((SELECT iccid FROM modems WHERE name = ?), ?) "
        "WHERE id = ? AND sim IS NULL",
        (modem, modem, inbound_id),
    )


def online_sims(tx: Tx, *, besides: str) -> set[str]:
    """SIMs of the modems other nodes than ``besides`` drive, online as those nodes last
    said, on nodes alive by their heartbeat."""
    return {r["sim"] for r in tx.exec_driver_sql(
        "SELECT COALESCE(m.iccid, m.name) AS sim FROM modems m JOIN nodes n ON n.name = m.node "
        "WHERE m.state = 'online' AND m.node != ? AND n.heartbeat_at + n.lease_s >= ? "
        "AND (n.stopped_at IS NULL OR n.stopped_at < n.heartbeat_at)",
        (besides, tx.now()),
    )}
