"""This appliance as one node of several sharing a database: heartbeat and takeover.

:class:`NodeMembership` registers the node and its modems at start, then beats every
``heartbeat_s`` from a thread. Each beat also looks for nodes silent longer than their
lease and takes over their in-flight work, exactly as start-up recovery treats a crash on
one box: claimed-unstarted parts back to ``queued``, parts mid-send to ``unknown``
(docs/architecture.md, "Several nodes"). A node that cannot write its heartbeat for
longer than its own lease stops sending (``may_send()`` is False): by then a survivor may
have taken its work over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

from appliance.db import nodes as nodes_db
from appliance.db import sending
from appliance.db.engine import read_tx, write_tx
from appliance.db.errors import QueueError
from appliance.db.nodes import NodeView
from appliance.queue.store import Queue

__all__ = ["ModemsTaken", "NodeMembership", "NodeView"]

_log = logging.getLogger(__name__)


class ModemsTaken(QueueError):
    """Modems this node is configured with are driven by another running node."""

    def __init__(self, clashes: dict[str, str]) -> None:
        listed = ", ".join(f"{m} (node {n})" for m, n in sorted(clashes.items()))
        super().__init__(f"modems already driven by another running appliance: {listed}; "
                         "give every modem a name unique across the nodes")
        self.clashes = clashes


class NodeMembership:
    """Node ``name`` on ``queue``'s database, driving the modems ``modems``."""

    def __init__(self, queue: Queue, name: str, *, modems: Sequence[str], lease_s: float, beat_s: float,
                 version: str, api_url: str | None = None,
                 on_takeover: Callable[[str], None] | None = None) -> None:
        self.queue = queue
        self.name = name
        self.modems = list(modems)
        self.lease_s = lease_s
        self.beat_s = beat_s
        self.version = version
        self.api_url = api_url
        self.on_takeover = on_takeover
        self.started_at = 0.0
        self._last_ok = time.monotonic()
        self._owned = True
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"node-{name}", daemon=True)
        self.takeovers: list[str] = []  # nodes whose work this one recovered

    def join(self) -> None:
        """Register the node and its modems (raises :class:`~appliance.db.nodes.NodeNameTaken`
        or :class:`ModemsTaken`). Call before the dispatcher recovers and starts."""
        with write_tx(self.queue.engine) as tx:
            self.started_at = nodes_db.register(
                tx, self.name, host=socket.gethostname(), pid=os.getpid(), version=self.version,
                api_url=self.api_url, lease_s=self.lease_s,
            )
            clashes = nodes_db.take_modems(tx, self.name, self.modems)
            if clashes:
                raise ModemsTaken(clashes)
        self._last_ok = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; record a clean stop (the dispatcher gave its claims back)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        try:
            with write_tx(self.queue.engine) as tx:
                nodes_db.stop(tx, self.name)
        except QueueError as exc:
            _log.warning("node %s: could not record the stop: %s", self.name, exc)

    def may_send(self) -> bool:
        """False once the heartbeat failed for longer than the lease, or a survivor took
        this node's work over (until the next successful beat re-registers it)."""
        return self._owned and time.monotonic() - self._last_ok < self.lease_s

    @property
    def heartbeat_age_s(self) -> float:
        return time.monotonic() - self._last_ok

    def nodes(self) -> list[NodeView]:
        with read_tx(self.queue.engine) as tx:
            return nodes_db.list_nodes(tx)

    # ------------------------------------------------------------------ the beat

    def beat_once(self) -> None:
        """One heartbeat, then take over any silent node's work."""
        with write_tx(self.queue.engine) as tx:
            owned = nodes_db.beat(tx, self.name, self.started_at)
        self._last_ok = time.monotonic()
        if not owned:
            _log.warning("node %s: a survivor took this node's work over while it was silent; rejoining",
                         self.name)
            self.join()
        self._owned = True
        self.take_over_silent()

    def take_over_silent(self) -> list[str]:
        """Recover the in-flight work of every node silent past its lease; their names."""
        taken: list[str] = []
        with write_tx(self.queue.engine) as tx:
            for node in nodes_db.silent_nodes(tx, self.name):
                modems = nodes_db.modems_of(tx, node.name)
                now = self.queue.clock()
                by = f"node {node.name} silent for {node.silent_s:.0f} s; taken over by {self.name}"
                result = sending.recover(tx, now, modems=modems, by=by)
                freed, failed = nodes_db.release_modems(
                    tx, modems, now,
                    reason=f"node {node.name} went silent after part of this message left through its modem; "
                           "the rest cannot follow through another SIM (resend it whole)",
                )
                nodes_db.mark_recovered(tx, node.name, self.name)
                _log.warning(
                    "node %s: took over node %s (silent %.0f s): %d unknown, %d back to the queue, "
                    "%d freed for any modem, %d failed",
                    self.name, node.name, node.silent_s, len(result.unknown), len(result.requeued),
                    len(freed), len(failed),
                )
                taken.append(node.name)
        if taken:
            self.takeovers.extend(taken)
            self.queue.notify()
            for name in taken:
                if self.on_takeover is not None:
                    self.on_takeover(name)
        return taken

    def _run(self) -> None:
        while not self._stopping.wait(self.beat_s):
            try:
                self.beat_once()
            except Exception as exc:  # the database may be away: keep beating when it is back
                _log.warning("node %s: heartbeat failed (%.0f s since the last one): %s",
                             self.name, self.heartbeat_age_s, exc)
