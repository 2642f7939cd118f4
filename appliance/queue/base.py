"""The queue's base: the engine, the clock, the settings and the notifications.

:class:`QueueBase` is what every part of :class:`appliance.queue.store.Queue` stands on
(``intake``, ``claims``, ``inbox`` each add one job to it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from appliance.db import notify
from appliance.db.engine import make_engine, write_tx
from appliance.db.errors import QueueError
from appliance.db.migrate import migrate
from appliance.db.sending import Backoff
from appliance.queue.quiet import QuietHours

__all__ = ["DEFAULT_REPORT_WINDOW_S", "QueueBase"]

# The name these lines always logged under (log filters and tests select on it).
_log = logging.getLogger("appliance.queue.store")

DEFAULT_REPORT_WINDOW_S = 72 * 3600.0


class QueueBase:
    """The engine, clock and settings of a queue, and its new-work notifications
    (the parameters are :class:`appliance.queue.store.Queue`'s)."""

    def __init__(
        self,
        db: Engine | str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
        backoff: Backoff = Backoff(),
        max_parts: int = 10,
        report_window_s: float = DEFAULT_REPORT_WINDOW_S,
        migrate_schema: bool = True,
        quiet_hours: QuietHours | None = None,
        national_languages: Sequence[str] = (),
        sticky_sender: bool = True,
        sticky_wait_s: float = 600.0,
    ) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_parts = max_parts
        self.report_window_s = report_window_s
        self.quiet_hours = quiet_hours
        self.national_languages = tuple(national_languages)
        self.sticky_sender = sticky_sender
        self.sticky_wait_s = sticky_wait_s
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        if migrate_schema:
            migrate(self.engine)

    # ------------------------------------------------------------------ notifications

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after new work is committed (enqueue, resend); returns an
        unsubscribe function. Callbacks must be quick (set an event)."""
        with self._listeners_lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def notify(self) -> None:
        """Tell the subscribers new work may be claimable (e.g. a broadcast was resumed)."""
        self._notify()

    def _notify(self) -> None:
        if self.engine.dialect.name == "postgresql":
            try:  # the other nodes' workers too (appliance.db.notify.WorkListener)
                with write_tx(self.engine) as tx:
                    notify.announce_work(tx)
            except QueueError as exc:  # they find the work at their next wake-up anyway
                _log.warning("could not wake the other nodes: %s", exc)
        with self._listeners_lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb()
            except Exception:  # a listener's bug must not fail the enqueue that committed
                _log.exception("queue listener failed")

    def close(self) -> None:
        self.engine.dispose()
