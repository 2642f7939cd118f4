"""Quiet hours: a daily window, in the appliance's timezone, when marketing messages wait.

``QuietHours(start, end, tz)`` covers ``[start, end)`` local time every day; a window
whose end is not after its start crosses midnight (21:00–08:00). Messages are never
dropped for it: the claim skips ``marketing`` messages inside the window and the
dispatcher's idle wake-up lands on the window's end (:meth:`QuietHours.ends_at`).
Daylight-saving changes are handled by working in local wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.queue.errors import InvalidRequest

__all__ = ["QuietHours", "parse_clock"]


def parse_clock(text: str) -> time:
    """``"21:00"`` → ``time(21, 0)``; :class:`InvalidRequest` when it is not ``HH:MM``."""
    try:
        hours, minutes = text.strip().split(":")
        if len(minutes) != 2:
            raise ValueError(text)
        return time(int(hours), int(minutes))
    except ValueError:
        raise InvalidRequest(f"{text!r} is not a time of day as HH:MM (e.g. 21:00)") from None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The daily window ``[start, end)`` in ``tz`` (an IANA name such as ``Europe/Paris``)."""

    start: time
    end: time
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise InvalidRequest("quiet hours: start and end are the same time; leave both empty for none")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRequest(f"quiet hours: {self.tz!r} is not an IANA timezone (e.g. Europe/London)") from None

    @classmethod
    def parse(cls, start: str, end: str, tz: str = "UTC") -> QuietHours | None:
        """From ``"HH:MM"`` strings; ``None`` when both are empty (no quiet hours)."""
        if not start.strip() and not end.strip():
            return None
        if not start.strip() or not end.strip():
            raise InvalidRequest("quiet hours: give both a start and an end (or neither)")
        return cls(parse_clock(start), parse_clock(end), tz)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC).astimezone(self.zone)

    def contains(self, ts: float) -> bool:
        """Whether UNIX time ``ts`` falls inside the window."""
        now = self._local(ts).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def _next_local(self, ts: float, at: time) -> float:
        """The first UNIX time after ``ts`` whose local wall clock reads ``at``."""
        local = self._local(ts)
        day = local.date()
        for offset in range(0, 3):
            candidate = datetime.combine(day + timedelta(days=offset), at, tzinfo=self.zone)
            value = candidate.timestamp()
            if value > ts:
                return value
        raise AssertionError("unreachable: a wall-clock time recurs within three days")

    def ends_at(self, ts: float) -> float:
        """When the window containing ``ts`` ends (``ts`` itself if outside the window)."""
        return self._next_local(ts, self.end) if self.contains(ts) else ts

    def next_start(self, ts: float) -> float:
        """When the next window starts after ``ts``."""
        return self._next_local(ts, self.start)

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} {self.tz}"
