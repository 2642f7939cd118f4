"""Signal history: every ``[health] signal_sample_s`` each of this node's modems has its
signal written to ``signal_samples`` for the dashboard's chart; samples older than
``signal_keep_days`` are pruned by the sampler itself, a few hundred rows a transaction.

The sample is the modem worker's last reading (``ManagedModem.signal``, refreshed by its
own maintenance between sends): sampling sends no AT command, so it never delays a send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from appliance.db import signals as signals_db
from appliance.db.engine import write_tx
from appliance.db.signals import SignalSampleIn

__all__ = ["PRUNE_BATCH", "SignalSampler"]

_log = logging.getLogger(__name__)

PRUNE_BATCH = 500
DAY_S = 86400.0


class SignalSampler:
    """Samples ``modems()`` (objects with ``name``, ``online`` and ``signal``, a
    ``SignalQuality`` or None) every ``every_s`` in a daemon thread."""

    def __init__(self, engine: Engine, modems: Callable[[], list[Any]], *, node: str | None = None,
                 every_s: float = 300.0, keep_days: float = 7.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.modems = modems
        self.node = node
        self.every_s = every_s
        self.keep_days = keep_days
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        """Write one sample per modem now and prune what is older than ``keep_days``;
        returns the samples written."""
        now = self.clock()
        samples = []
        for modem in list(self.modems()):
            signal: Any = getattr(modem, "signal", None) if getattr(modem, "online", False) else None
            dbm = getattr(signal, "dbm", None)
            samples.append(SignalSampleIn(
                modem=modem.name, at=now, rssi=getattr(signal, "rssi", None), dbm=dbm,
                bars=getattr(signal, "bars", None) if dbm is not None else None, node=self.node,
            ))
        with write_tx(self.engine) as tx:
            signals_db.record_samples(tx, samples)
        self.prune(now)
        return len(samples)

    def prune(self, now: float) -> int:
        """Delete samples older than ``keep_days`` in short transactions."""
        before = now - self.keep_days * DAY_S
        total = 0
        while not self._stop.is_set():
            with write_tx(self.engine) as tx:
                done = signals_db.prune_signal(tx, before, limit=PRUNE_BATCH)
            total += done
            if done < PRUNE_BATCH:
                break
        return total

    def start(self) -> None:
        """Sample every ``every_s`` in a daemon thread (the first a sampling period from now,
        once the modems have had time to read their signal); 0 never starts."""
        if self._thread is not None or self.every_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="signal-sampler", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the sampling thread is running."""
        return self._thread is not None

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a database hiccup: the next period tries again
                _log.exception("signal sampling failed")
