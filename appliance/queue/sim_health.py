"""SIM health: a rolling window of each modem's send outcomes, and pausing / resuming the
SIMs that cross a threshold (README, "SIM health"; ``[health.sim]``).

- :class:`SendWindow` — one worker's memory of its recent sends (pure; the dispatcher
  feeds it every outcome and pauses when it returns a :class:`Trip`).
- :class:`SimHealth` — the durable side (``appliance.db.sim_health``): pause, resume,
  probe outcomes and the ``modem.paused`` / ``modem.resumed`` events, for the dispatcher,
  the API, the pages and the command line.

The window lives in the worker's memory (a restart starts it empty); whether a SIM is
paused lives in the database, so a restart keeps it paused and every node sharing the
database sees it. What counts: a send refused with a ``+CMS ERROR`` (except the codes in
``ignore_cms``, which blame the recipient's number), a send with no answer, a modem error
before sending. A modem that went away (unplugged) is not counted: it is offline already.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.config import SimHealthSection
from appliance.db import sim_health as health_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.errors import InvalidRequest, NotFound
from appliance.db.messages import list_modems
from appliance.db.sim_health import HealthRow
from appliance.modem.errors import ModemDisconnected, ModemError

__all__ = ["MAX_REASON", "HealthRow", "SendWindow", "SimHealth", "Trip", "UnknownModem", "apply_now", "sim_health_of"]

_log = logging.getLogger(__name__)

MAX_REASON = 200
"""The longest reason an admin may give a pause."""


class UnknownModem(NotFound):
    """No modem of that name is configured or known to the database."""

    def __init__(self, name: str, known: Collection[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"no modem named {name!r} (known modems: {listed})")
        self.name = name
        self.known = tuple(sorted(known))


@dataclass(frozen=True, slots=True)
class Trip:
    """Why a SIM is to be paused: a reason a person reads, the ``+CMS ERROR`` code when one
    decided it, and the window's counts."""

    reason: str
    code: int | None
    failures_in_row: int
    failed: int
    of: int


class SendWindow:
    """The outcomes of one modem's last ``window`` sends and its failures in a row.

    ``probation`` (after a probe resumed the SIM): the next counted outcome decides — a
    failure pauses at once, a success ends the probation.
    """

    def __init__(self, config: SimHealthSection, *, probation: bool = False) -> None:
        self.config = config
        self.recent: deque[bool] = deque(maxlen=config.window)  # True: failed
        self.in_row = 0
        self.probation = probation

    def reset(self, *, probation: bool = False) -> None:
        self.recent.clear()
        self.in_row = 0
        self.probation = probation

    def record(self, failure: ModemError | None) -> Trip | None:
        """Note one send's outcome (None: it went through); a :class:`Trip` when the SIM
        should be paused now."""
        cfg = self.config
        if failure is None:
            self.recent.append(False)
            self.in_row = 0
            return None
        if isinstance(failure, ModemDisconnected):
            return None
        code = failure.code if failure.kind == "cms" else None
        if code is not None and code in cfg.ignore_cms:
            return None
        self.recent.append(True)
        self.in_row += 1
        failed = sum(self.recent)
        what = f"+CMS ERROR {code}" if code is not None else failure.message
        if code is not None and code in cfg.barring_cms:
            reason = f"the operator refused a send with {what} (a barring error)"
        elif self.probation:
            reason = f"the first send after the probe failed: {what}"
        elif self.in_row >= cfg.failures_in_row:
            reason = f"{self.in_row} sends failed in a row; the last: {what}"
        elif len(self.recent) >= cfg.window and failed > cfg.max_failed_share * len(self.recent):
            reason = f"{failed} of the last {len(self.recent)} sends failed; the last: {what}"
        else:
            return None
        return Trip(reason, code, self.in_row, failed, len(self.recent))


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class SimHealth:
    """Pause and resume SIMs in the database (see the module doc). ``on_event`` is called
    after a ``modem.paused`` / ``modem.resumed`` event was committed (the webhooks' kick)."""

    def __init__(self, engine: Any, config: SimHealthSection | None = None, *,
                 clock: Callable[[], float] = time.time, on_event: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.config = config or SimHealthSection()
        self.clock = clock
        self._listeners: list[Callable[[], None]] = [on_event] if on_event is not None else []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each pause or resume committed here."""
        with self._lock:
            self._listeners.append(listener)

    def _told(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener's bug must not undo a pause
                _log.exception("SIM health listener failed")

    def cooldown(self, strikes: int) -> float:
        """The cool-down before the probe of a SIM paused ``strikes`` times in a row."""
        cfg = self.config
        return min(cfg.cooldown_max_s, cfg.cooldown_s * 2 ** max(0, strikes - 1))

    # ------------------------------------------------------------------ reads

    def states(self, modems: Collection[str] | None = None) -> dict[str, HealthRow]:
        """The health rows of ``modems`` (all when None), by name; a modem never paused has none."""
        with read_tx(self.engine) as tx:
            return health_db.list_rows(tx, modems)

    def paused(self, modems: Collection[str] | None = None) -> dict[str, HealthRow]:
        """The paused ones among :meth:`states`."""
        return {name: row for name, row in self.states(modems).items() if row.paused}

    def known(self, extra: Collection[str] = ()) -> set[str]:
        """Modem names the database knows (and ``extra``, the configured ones)."""
        with read_tx(self.engine) as tx:
            return {m.name for m in list_modems(tx)} | set(health_db.list_rows(tx)) | set(extra)

    def check_known(self, name: str, extra: Collection[str] = ()) -> None:
        """:class:`UnknownModem` unless ``name`` is a modem this appliance knows."""
        known = self.known(extra)
        if name not in known:
            raise UnknownModem(name, known)

    # ------------------------------------------------------------------ writes

    def trip(self, modem: str, trip: Trip) -> HealthRow:
        """Pause ``modem`` because its health check tripped (or its probe failed)."""
        now = self.clock()
        with write_tx(self.engine) as tx:
            before = health_db.get(tx, modem, lock=True)
            if before is not None and before.paused and before.probe_at is None:
                return before  # an admin's pause (seen late by this worker) stays theirs
            strikes = (before.strikes if before is not None else 0) + 1
            cooldown = self.cooldown(strikes)
            probe_at = now + cooldown if self.config.probe else None
            row = health_db.pause(
                tx, modem, reason=trip.reason, code=trip.code, by="health check", now=now, probe_at=probe_at,
                strikes=strikes,
                detail={"failures_in_row": trip.failures_in_row, "failed": trip.failed, "of": trip.of,
                        "cooldown_s": cooldown if self.config.probe else None, "probe_at": _iso(probe_at),
                        "strikes": strikes},
            )
        _log.warning("[%s] paused by its health check: %s; %s", modem, trip.reason,
                     f"probe in {cooldown:.0f} s" if probe_at is not None else "an admin must resume it")
        self._told()
        return row

    def pause(self, modem: str, *, by: str, reason: str | None = None) -> tuple[HealthRow, bool]:
        """An admin pauses ``modem`` (only an admin resumes it: no probe). Returns the row
        and whether it changed (False: it was paused already, left as it was)."""
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidRequest(f"at most {MAX_REASON} characters, not {len(reason)}", field="reason")
        now = self.clock()
        text = reason or f"paused by {by}"
        with write_tx(self.engine) as tx:
            before = health_db.get(tx, modem, lock=True)
            if before is not None and before.paused:
                return before, False
            row = health_db.pause(tx, modem, reason=text, code=None, by=by, now=now, probe_at=None,
                                  strikes=before.strikes if before is not None else 0,
                                  detail={"failures_in_row": None, "failed": None, "of": None,
                                          "cooldown_s": None, "probe_at": None, "strikes": None})
        _log.warning("[%s] paused by %s%s", modem, by, f": {reason}" if reason else "")
        self._told()
        return row, True

    def resume(self, modem: str, *, by: str, probation: bool = False) -> HealthRow | None:
        """Resume ``modem``; None when it was not paused. ``probation`` (a probe resumed
        it): its first send decides; an admin's resume clears its strikes."""
        with write_tx(self.engine) as tx:
            row = health_db.resume(tx, modem, by=by, now=self.clock(), probation=probation)
        if row is not None:
            _log.warning("[%s] resumed by %s", modem, by)
            self._told()
        return row

    def passed(self, modem: str) -> None:
        """The first send after a probe went through: the SIM is healthy again."""
        with write_tx(self.engine) as tx:
            health_db.clear_probation(tx, modem, self.clock())
        _log.info("[%s] first send after the probe went through: healthy again", modem)


def sim_health_of(services: Any) -> SimHealth:
    """The running appliance's :class:`SimHealth` (the API and the pages), or one on its
    database and settings when it has none (an API without a daemon)."""
    health = getattr(services, "sim_health", None)
    if isinstance(health, SimHealth):
        return health
    return SimHealth(services.queue.engine, services.settings.health.sim)


def apply_now(services: Any) -> None:
    """A pause or resume was committed here: the local dispatcher reads it now, not in 2 s."""
    refresh = getattr(getattr(services, "dispatcher", None), "refresh_health", None)
    if refresh is not None:
        refresh(force=True)
