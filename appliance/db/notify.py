"""New work on one node wakes the workers of every node (PostgreSQL LISTEN/NOTIFY).

:func:`announce_work` queues a notification inside the writing transaction (PostgreSQL
delivers it at commit, never for a rolled-back one). :class:`WorkListener` holds one
connection that LISTENs and calls back on every notification; it reconnects when the
server goes away. On SQLite, one process owns the file: the queue's in-process listeners
are enough and both are no-ops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from appliance.db.engine import POSTGRESQL, Tx

__all__ = ["CHANNEL", "WorkListener", "announce_work"]

_log = logging.getLogger(__name__)

CHANNEL = "appliance_work"


def announce_work(tx: Tx) -> None:
    """Tell the other nodes, once this transaction commits, that work may be claimable."""
    if tx.postgres:
        tx.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '')")


class WorkListener:
    """A thread calling ``callback()`` whenever another node announces work."""

    def __init__(self, engine: Engine, callback: Callable[[], None]) -> None:
        self.engine = engine
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="work-listener", daemon=True)

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == POSTGRESQL

    def start(self) -> WorkListener:
        if self.needed:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(3)

    def _run(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.callback()  # whatever was announced while not listening
                    while not self._stop.is_set():
                        heard = sum(1 for _ in conn.notifies(timeout=1.0, stop_after=64))
                        if heard and not self._stop.is_set():
                            self.callback()
            except Exception as exc:  # the server restarting: listen again once it is back
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                _log.warning("work listener: %s; listening again in 2 s", reason)
                self._stop.wait(2.0)
