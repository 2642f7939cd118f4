"""Per-SIM send budgets: a minimum interval and sliding windows counted in parts.

A :class:`SendBudget` holds the times at which one modem handed parts to the network (as
found in the durable send log, so a restart does not reset a budget) and answers two
questions: how many parts may go right now (:meth:`SendBudget.room`), and when the next
``n`` may (:meth:`SendBudget.next_slot`). Windows slide: a part sent at ``t`` counts in the
minute window until ``t + 60 s``.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_WINDOWS", "BudgetView", "RateLimits", "SendBudget"]

DEFAULT_WINDOWS: tuple[float, float, float] = (60.0, 3600.0, 86400.0)
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The caps of one SIM. ``windows`` are the lengths of the minute/hour/day windows in
    seconds (tests and benchmarks shorten them; production keeps the default)."""

    min_interval_s: float = 2.0
    per_minute: int = 6
    per_hour: int = 200
    per_day: int = 1000
    windows: tuple[float, float, float] = DEFAULT_WINDOWS

    @classmethod
    def from_config(cls, config: Any, *, windows: tuple[float, float, float] = DEFAULT_WINDOWS) -> RateLimits:
        """From an :class:`appliance.config.ModemConfig` (or anything with its fields)."""
        return cls(
            min_interval_s=float(config.min_interval_s),
            per_minute=int(config.max_parts_per_minute),
            per_hour=int(config.max_parts_per_hour),
            per_day=int(config.max_parts_per_day),
            windows=windows,
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


class SendBudget:
    """Sliding-window counter of the parts one modem sent. Not thread-safe: one per worker."""

    def __init__(self, limits: RateLimits, times: Iterable[float] = ()) -> None:
        self.limits = limits
        self._horizon = max(limits.windows)
        self._times: list[float] = sorted(times)

    @property
    def times(self) -> list[float]:
        return list(self._times)

    def record(self, at: float) -> None:
        """A part was handed to the modem at ``at``."""
        insort(self._times, at)

    def move(self, old: float, new: float) -> None:
        """A recorded send's time is now known better (e.g. when the modem answered)."""
        self.forget(old)
        self.record(new)

    def forget(self, at: float) -> None:
        """A recorded send did not leave after all (nothing reached the modem)."""
        i = bisect_right(self._times, at) - 1
        if i >= 0 and self._times[i] == at:
            del self._times[i]

    def _prune(self, now: float) -> None:
        cut = bisect_right(self._times, now - self._horizon)
        if cut:
            del self._times[:cut]

    def _in_window(self, now: float, window: float) -> int:
        return len(self._times) - bisect_right(self._times, now - window)

    def room(self, now: float) -> int:
        """How many parts the windows allow right now (the minimum interval aside)."""
        self._prune(now)
        return max(0, min(cap - self._in_window(now, w) for w, cap in self.limits.caps))

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
        return BudgetView(modem, m, h, d, self.next_slot(now))
