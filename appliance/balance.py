"""Prepaid balances: each modem with ``balance_ussd`` has its balance read by USSD every
``balance_every_h`` hours, kept in the database with its time, and a reading below
``balance_low`` raises the ``modem.balance_low`` event (webhooks) once per fall.

Readings go through :meth:`ManagedModem.ussd` like the API's USSD endpoint: its AT command
runs under the transport's command lock, so it never interleaves with a send.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.db import balances as balances_db
from appliance.db.balances import BalanceView
from appliance.db.engine import read_tx, write_tx
from appliance.modem.errors import ModemError, UssdError

__all__ = ["BalanceService", "parse_amount"]

_log = logging.getLogger(__name__)


def parse_amount(text: str, pattern: str) -> float | None:
    """The number ``pattern``'s first group finds in ``text`` (a decimal comma is read as
    a point), or None."""
    match = re.search(pattern, text)
    if match is None or match.group(1) is None:
        return None
    try:
        return float(match.group(1).replace(",", "."))
    except ValueError:
        return None


class BalanceService:
    """Reads the balances on schedule (one thread) and keeps every reading.

    ``modems`` returns the running modems (objects with ``name``, ``config``, ``online``,
    ``identity`` and ``ussd(code)``); ``on_event`` is called after a low-balance event was
    written (the webhooks' kick).
    """

    def __init__(self, engine: Any, modems: Callable[[], list[Any]], *,
                 on_event: Callable[[], None] | None = None, check_every_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.modems = modems
        self.on_event = on_event
        self.check_every_s = check_every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the schedule thread (a modem without a reading is read once online)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="balances", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def kick(self) -> None:
        """Look at the schedule now (a modem came online)."""
        self._wake.set()

    def latest(self) -> dict[str, BalanceView]:
        """Each modem's newest reading."""
        with read_tx(self.engine) as tx:
            return balances_db.latest(tx)

    def record(self, modem: Any, text: str) -> BalanceView:
        """Keep ``text`` (the answer to ``modem``'s ``balance_ussd``) as its balance now;
        a fall below ``balance_low`` writes the ``modem.balance_low`` event."""
        config = modem.config
        amount = parse_amount(text, config.balance_pattern)
        identity = getattr(modem, "identity", None)
        iccid = identity.iccid if identity is not None else None
        at = self.clock()
        low = config.balance_low
        with self._lock, write_tx(self.engine) as tx:
            before = balances_db.latest(tx).get(modem.name)
            balances_db.record(tx, modem.name, iccid=iccid, amount=amount, text=text, at=at)
            was_low = (before is not None and before.amount is not None and low is not None
                       and before.amount < low)
            fell = low is not None and amount is not None and amount < low and not was_low
            if fell:
                balances_db.add_low_event(tx, modem.name, amount=amount, low=low, text=text, at=at)
        if fell:
            _log.warning("[%s] prepaid balance %s is below %s", modem.name, amount, low)
            if self.on_event is not None:
                self.on_event()
        return BalanceView(modem.name, iccid, amount, text, at)

    def read(self, modem: Any) -> BalanceView | None:
        """Read ``modem``'s balance now; None when the modem could not answer (logged)."""
        code = modem.config.balance_ussd
        try:
            text = modem.ussd(code)
        except UssdError as exc:
            if not exc.text:
                _log.warning("[%s] balance %s: %s", modem.name, code, exc.message)
                return None
            text = exc.text
        except ModemError as exc:
            _log.warning("[%s] balance %s: %s", modem.name, code, exc.message)
            return None
        return self.record(modem, text)

    def due(self, now: float) -> list[Any]:
        """The online modems whose balance is older than their ``balance_every_h``."""
        latest = self.latest()
        out = []
        for modem in list(self.modems()):
            config = getattr(modem, "config", None)
            if config is None or not config.balance_ussd or not modem.online:
                continue
            last = latest.get(modem.name)
            if last is None or now - last.at >= config.balance_every_h * 3600:
                out.append(modem)
        return out

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                for modem in self.due(self.clock()):
                    if self._stopping.is_set():
                        return
                    self.read(modem)
            except Exception:  # noqa: BLE001 - the schedule must outlive a database hiccup
                _log.exception("balance check failed")
            self._wake.wait(self.check_every_s)
            self._wake.clear()
