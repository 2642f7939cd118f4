"""Per-SIM send budgets: a minimum interval and sliding windows counted in parts.

A :class:`SendBudget` holds the times at which one modem handed parts to the network (as
found in the durable send log, so a restart does not reset a budget) and answers two
questions: how many parts may go right now (:meth:`SendBudget.room`), and when the next
``n`` may (:meth:`SendBudget.next_slot`). Windows slide: a part sent at ``t`` counts in the
minute window until ``t + 60 s``. The optional monthly cap does not slide: it counts the
parts of the calendar month (local time), counted once from the send log when the worker
starts and kept in memory after that.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["DEFAULT_WINDOWS", "BudgetView", "RateLimits", "SendBudget", "month_start", "next_month_start"]

DEFAULT_WINDOWS: tuple[float, float, float] = (60.0, 3600.0, 86400.0)
_EPSILON = 1e-6
_NO_CAP = 1 << 30


def month_start(now: float) -> float:
    """UNIX time of the first instant of ``now``'s calendar month (local time)."""
    local = datetime.fromtimestamp(now).astimezone()
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_month_start(now: float) -> float:
    """UNIX time of the first instant of the calendar month after ``now``'s (local time)."""
    local = datetime.fromtimestamp(now).astimezone()
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1).astimezone().timestamp()


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The caps of one SIM. ``windows`` are the lengths of the minute/hour/day windows in
    seconds (tests and benchmarks shorten them; production keeps the default)."""

    min_interval_s: float = 2.0
    per_minute: int = 6
    per_hour: int = 200
    per_day: int = 1000
    windows: tuple[float, float, float] = DEFAULT_WINDOWS
    per_month: int | None = None
    recipients_per_month: int | None = None

    @classmethod
    def from_config(cls, config: Any, *, windows: tuple[float, float, float] = DEFAULT_WINDOWS) -> RateLimits:
        """From an :class:`appliance.config.ModemConfig` (or anything with its fields)."""
        return cls(
            min_interval_s=float(config.min_interval_s),
            per_minute=int(config.max_parts_per_minute),
            per_hour=int(config.max_parts_per_hour),
            per_day=int(config.max_parts_per_day),
            windows=windows,
            per_month=getattr(config, "max_parts_per_month", None),
            recipients_per_month=getattr(config, "max_recipients_per_month", None),
        )

    @property
    def caps(self) -> tuple[tuple[float, int], ...]:
        """``(window seconds, max parts)`` for the minute, hour and day windows."""
        return (
            (self.windows[0], self.per_minute),
            (self.windows[1], self.per_hour),
            (self.windows[2], self.per_day),
        )

    @property
    def smallest_cap(self) -> int:
        return min(self.per_minute, self.per_hour, self.per_day)


@dataclass(frozen=True, slots=True)
class BudgetView:
    """What one modem may still send: parts left per window and the next allowed time."""

    modem: str
    minute_left: int
    hour_left: int
    day_left: int
    next_allowed_at: float  # UNIX time; <= now when a part may go now
    month_left: int | None = None  # None: no monthly cap


class SendBudget:
    """Sliding-window counter of the parts one modem sent. Not thread-safe: one per worker."""

    def __init__(self, limits: RateLimits, times: Iterable[float] = (), *, month_from: float | None = None,
                 month_parts: int = 0) -> None:
        """``month_parts`` parts were sent since ``month_from`` (the start of the current
        calendar month; counted from the send log by the caller when a monthly cap is set)."""
        self.limits = limits
        self._horizon = max(limits.windows)
        self._times: list[float] = sorted(times)
        self._month_from = month_from
        self._month_until = next_month_start(month_from) if month_from is not None else None
        self._month_parts = month_parts

    @property
    def times(self) -> list[float]:
        return list(self._times)

    def record(self, at: float) -> None:
        """A part was handed to the modem at ``at``."""
        insort(self._times, at)
        if self._month_from is not None and at >= self._month_from:
            self._month_parts += 1

    def move(self, old: float, new: float) -> None:
        """A recorded send's time is now known better (e.g. when the modem answered)."""
        self.forget(old)
        self.record(new)

    def forget(self, at: float) -> None:
        """A recorded send did not leave after all (nothing reached the modem)."""
        i = bisect_right(self._times, at) - 1
        if i >= 0 and self._times[i] == at:
            del self._times[i]
            if self._month_from is not None and at >= self._month_from:
                self._month_parts = max(0, self._month_parts - 1)

    def month_left(self, now: float) -> int | None:
        """Parts left under the monthly cap (None: no cap). A new month starts at zero,
        with the parts already sent in it that the windows still hold."""
        cap = self.limits.per_month
        if cap is None:
            return None
        if self._month_from is None or self._month_until is None or now >= self._month_until:
            self._month_from = month_start(now)
            self._month_until = next_month_start(now)
            self._month_parts = len(self._times) - bisect_right(self._times, self._month_from - _EPSILON)
        return max(0, cap - self._month_parts)

    def _prune(self, now: float) -> None:
        cut = bisect_right(self._times, now - self._horizon)
        if cut:
            del self._times[:cut]

    def _in_window(self, now: float, window: float) -> int:
        return len(self._times) - bisect_right(self._times, now - window)

    def room(self, now: float) -> int:
        """How many parts the windows allow right now (the minimum interval aside)."""
        self._prune(now)
        room = max(0, min(cap - self._in_window(now, w) for w, cap in self.limits.caps))
        month = self.month_left(now)
        return room if month is None else min(room, month)

    def left(self, now: float) -> tuple[int, int, int]:
        """Parts left in the minute, hour and day windows."""
        self._prune(now)
        m, h, d = (max(0, cap - self._in_window(now, w)) for w, cap in self.limits.caps)
        return m, h, d

    def next_slot(self, now: float, parts: int = 1) -> float:
        """The earliest time ``>= now`` at which ``parts`` more parts fit every window and
        the minimum interval since the last send has passed. ``parts`` above a window's cap
        is read as the cap (such a message is paced part by part)."""
        self._prune(now)
        at = now
        month = self.month_left(now)
        if month is not None and month < min(parts, self.limits.per_month or parts) and self._month_until is not None:
            return self._month_until  # the month's parts are spent: the next month
        if self._times and self.limits.min_interval_s > 0:
            at = max(at, self._times[-1] + self.limits.min_interval_s)
        for window, cap in self.limits.caps:
            need = min(parts, cap)
            start = bisect_right(self._times, now - window)
            in_window = len(self._times) - start
            excess = in_window - (cap - need)
            if excess > 0:
                # The excess oldest sends must slide out: the last of them at t + window.
                # (+1 µs: t + window - window may round below t, re-counting the send.)
                at = max(at, self._times[start + excess - 1] + window + _EPSILON)
        return at

    def view(self, modem: str, now: float) -> BudgetView:
        m, h, d = self.left(now)
        return BudgetView(modem, m, h, d, self.next_slot(now), self.month_left(now))
