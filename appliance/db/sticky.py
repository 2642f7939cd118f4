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
from typing import Any

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


# Both sources in one statement, the newest per number chosen by the database: half the
# rows to read back, and on PostgreSQL the numbers sent once.
_SOURCES = (
    "SELECT m.recipient AS number, COALESCE(s.sim, s.modem) AS sim, s.at AS at "
    "FROM messages m{m_hint} JOIN send_log s{s_hint} ON s.message_id = m.id WHERE m.recipient IN ({numbers}) "
    "UNION ALL "
    "SELECT i.sender AS number, COALESCE(i.sim, (SELECT d.iccid FROM modems d WHERE d.name = i.modem), i.modem) "
    "AS sim, i.received_at AS at FROM inbound i{i_hint} WHERE i.sender IN ({numbers})"
)


def last_sims(tx: Tx, numbers: Sequence[str]) -> dict[str, str]:
    """The SIM each of ``numbers`` knows (numbers with no history are left out)."""
    unique = list(dict.fromkeys(numbers))
    if not unique:
        return {}
    if tx.postgres:  # one array parameter instead of thousands of placeholders
        sources = _SOURCES.format(m_hint="", s_hint="", i_hint="", numbers="SELECT number FROM wanted")
        rows: Iterable[Any] = tx.exec_driver_sql(
            "WITH wanted(number) AS (SELECT unnest(CAST(? AS text[]))) "
            f"SELECT DISTINCT ON (number) number, sim FROM ({sources}) AS known ORDER BY number, at DESC",
            (unique,),
        )
        return {r["number"]: r["sim"] for r in rows}
    found: dict[str, str] = {}
    for start in range(0, len(unique), _CHUNK):
        chunk = tuple(unique[start:start + _CHUNK])
        sources = _SOURCES.format(m_hint=" INDEXED BY ix_messages_recipient_id", s_hint=" INDEXED BY ix_send_log_message",
                                  i_hint=" INDEXED BY ix_inbound_sender", numbers=",".join("?" * len(chunk)))
        # SQLite takes the bare columns of a MAX() query from the row holding the maximum.
        found.update((r["number"], r["sim"]) for r in tx.exec_driver_sql(
            f"SELECT number, sim, MAX(at) AS at FROM ({sources}) GROUP BY number", chunk + chunk))
    return found


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
