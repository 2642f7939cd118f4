"""Nodes sharing one database: registration, heartbeats, and the takeover of a silent one.

Times come from the database's clock (:meth:`Tx.now`), so nodes with skewed clocks agree
on who is silent. A node is *silent* when its last heartbeat is older than its own lease
and it did not stop cleanly; a survivor then recovers its in-flight work exactly as a
crash on one box is recovered at start-up (docs/architecture.md, "Several nodes").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.db.engine import Tx
from appliance.db.errors import QueueError
from appliance.db.messages import add_events

__all__ = [
    "NodeNameTaken",
    "NodeView",
    "beat",
    "list_nodes",
    "mark_recovered",
    "modems_of",
    "node_modems",
    "register",
    "silent_nodes",
    "stop",
    "take_modems",
    "release_modems",
]


class NodeNameTaken(QueueError):
    """Another running appliance on another host uses this node name."""

    def __init__(self, name: str, host: str, silent_s: float) -> None:
        super().__init__(
            f"node name {name!r} is in use by a running appliance on {host} (heard from {silent_s:.0f} s ago); "
            "give each appliance its own [node] name"
        )
        self.name = name
        self.host = host
        self.silent_s = silent_s


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as ``/v1/modems``, ``/healthz`` and ``appliance db check`` show it."""

    name: str
    host: str
    pid: int
    version: str
    api_url: str | None
    lease_s: float
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    recovered_at: float | None
    recovered_by: str | None
    silent_s: float  # since its last heartbeat, by the database's clock

    @property
    def state(self) -> str:
        """``alive``, ``silent`` (lease ran out), or ``stopped`` (shut down cleanly)."""
        if self.stopped_at is not None and self.stopped_at >= self.heartbeat_at:
            return "stopped"
        return "silent" if self.silent_s > self.lease_s else "alive"


_NODE_COLS = (
    "name, host, pid, version, api_url, lease_s, started_at, heartbeat_at, stopped_at, recovered_at, recovered_by"
)


def _view(r: object, now: float) -> NodeView:
    row: dict = {k: r[k] for k in _NODE_COLS.split(", ")}  # type: ignore[index]
    return NodeView(**row, silent_s=max(0.0, now - row["heartbeat_at"]))


def register(tx: Tx, name: str, *, host: str, pid: int, version: str, api_url: str | None,
             lease_s: float) -> float:
    """Record that node ``name`` (re)starts now; returns the database's time.

    Refused (:class:`NodeNameTaken`) while another host's appliance with this name is
    alive; the same host may restart at once (after a crash its lease may still run).
    """
    tx.lock(f"node:{name}")
    now = tx.now()
    row = tx.exec_driver_sql(f"SELECT {_NODE_COLS} FROM nodes WHERE name = ?", (name,)).first()
    if row is not None:
        existing = _view(row, now)
        if existing.state == "alive" and existing.host != host:
            raise NodeNameTaken(name, existing.host, existing.silent_s)
        tx.exec_driver_sql(
            "UPDATE nodes SET host = ?, pid = ?, version = ?, api_url = ?, lease_s = ?, started_at = ?, "
            "heartbeat_at = ?, stopped_at = NULL WHERE name = ?",
            (host, pid, version, api_url, lease_s, now, now, name),
        )
    else:
        tx.exec_driver_sql(
            "INSERT INTO nodes (name, host, pid, version, api_url, lease_s, started_at, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, host, pid, version, api_url, lease_s, now, now),
        )
    return now


def beat(tx: Tx, name: str, started_at: float) -> bool:
    """A heartbeat of node ``name``. False when a survivor took over this node's work since
    it started (its lease ran out: its claims are no longer its own)."""
    now = tx.now()
    row = tx.exec_driver_sql(
        "UPDATE nodes SET heartbeat_at = ? WHERE name = ? RETURNING recovered_at", (now, name)
    ).first()
    return row is not None and (row["recovered_at"] is None or row["recovered_at"] < started_at)


def stop(tx: Tx, name: str) -> None:
    """Node ``name`` shut down cleanly (its claims were given back)."""
    now = tx.now()
    tx.exec_driver_sql("UPDATE nodes SET stopped_at = ?, heartbeat_at = ? WHERE name = ?", (now, now, name))


def list_nodes(tx: Tx) -> list[NodeView]:
    now = tx.now()
    return [_view(r, now) for r in tx.exec_driver_sql(f"SELECT {_NODE_COLS} FROM nodes ORDER BY name")]


def silent_nodes(tx: Tx, me: str) -> list[NodeView]:
    """Nodes other than ``me`` whose lease ran out and whose work nobody recovered yet,
    locked for this transaction (two survivors never take over the same node)."""
    now = tx.now()
    skip = " FOR UPDATE SKIP LOCKED" if tx.postgres else ""
    rows = tx.exec_driver_sql(
        f"SELECT {_NODE_COLS} FROM nodes WHERE name != ? AND heartbeat_at + lease_s < ? "
        "AND (stopped_at IS NULL OR stopped_at < heartbeat_at) "
        f"AND (recovered_at IS NULL OR recovered_at < heartbeat_at) ORDER BY name{skip}",
        (me, now),
    ).all()
    return [_view(r, now) for r in rows]


def mark_recovered(tx: Tx, name: str, by: str) -> None:
    tx.exec_driver_sql("UPDATE nodes SET recovered_at = ?, recovered_by = ? WHERE name = ?", (tx.now(), by, name))


def modems_of(tx: Tx, node: str) -> list[str]:
    """The modems node ``node`` drives (as it last registered them)."""
    return [r["name"] for r in tx.exec_driver_sql("SELECT name FROM modems WHERE node = ? ORDER BY name", (node,))]


def node_modems(tx: Tx) -> dict[str, str | None]:
    """Every known modem and the node that drives it."""
    return {r["name"]: r["node"] for r in tx.exec_driver_sql("SELECT name, node FROM modems")}


def release_modems(tx: Tx, modems: Sequence[str], now: float, *, reason: str) -> tuple[list[int], list[int]]:
    """Queued messages waiting for ``modems`` (a silent node's): those with no part sent
    are freed for any modem; those with a part already sent through them cannot leave
    through another SIM (the phone would not join the parts), so they end ``failed`` with
    ``reason`` (an operator may resend them whole). Returns ``(freed, failed)`` ids."""
    if not modems:
        return [], []
    marks = ", ".join("?" * len(modems))
    rows = tx.exec_driver_sql(
        "SELECT m.id, EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id "
        "AND p.state IN ('sent', 'delivered', 'failed', 'unknown')) AS started "
        f"FROM messages m WHERE m.status = 'queued' AND m.modem IN ({marks})", tuple(modems)
    ).all()
    freed = [r["id"] for r in rows if not r["started"]]
    failed = [r["id"] for r in rows if r["started"]]
    if freed:
        tx.exec_driver_sql(
            "UPDATE messages SET modem = NULL, concat_ref = NULL, updated_at = ? WHERE id = ? AND status = 'queued'",
            [(now, i) for i in freed],
        )
    if failed:
        tx.exec_driver_sql(
            "UPDATE messages SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
            [(reason, now, i) for i in failed],
        )
        tx.exec_driver_sql(
            "UPDATE parts SET state = 'cancelled' WHERE message_id = ? AND state = 'queued'", [(i,) for i in failed]
        )
        add_events(tx, now, "failed", failed, {"error": reason})
    return freed, failed


def take_modems(tx: Tx, me: str, names: Sequence[str]) -> dict[str, str]:
    """Record that node ``me`` drives the modems ``names``. A modem another *alive* node
    drives is not taken: returned as ``{modem: that node}`` (the caller refuses to start)."""
    now = tx.now()
    alive = {n.name for n in list_nodes(tx) if n.state == "alive" and n.name != me}
    owners = node_modems(tx)
    clashes = {m: owners[m] for m in names if owners.get(m) in alive}  # type: ignore[misc]
    if clashes:
        return clashes  # type: ignore[return-value]
    for m in names:
        tx.exec_driver_sql(
            "INSERT INTO modems (name, updated_at, next_concat_ref, node) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET node = excluded.node",
            (m, now, random.randrange(256), me),
        )
    return {}
