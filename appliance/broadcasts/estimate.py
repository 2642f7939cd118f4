"""How long a broadcast takes under the modems' caps, in seconds and in words.

A modem that starts with an empty budget can send part ``k`` (0-based) no earlier than
``k × min_interval`` and, for each window of length ``W`` capped at ``C`` parts, no earlier
than ``⌊k / C⌋ × W`` (bursts fill a window, the next burst waits for it to slide). The
parts are shared evenly between the modems (round-robin), so the broadcast lasts as long
as the busiest modem's share. Sending time itself (seconds per part at the modem) is not
counted. Quiet hours stretch the time of a marketing broadcast: sending stops inside the
window and resumes at its end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from appliance.queue.quiet import QuietHours
from appliance.queue.ratelimit import RateLimits

__all__ = ["finish_time", "humanize", "modem_time", "send_duration"]


def modem_time(parts: int, limits: RateLimits) -> float:
    """Seconds from the first to the last of ``parts`` parts on one modem."""
    if parts <= 1:
        return 0.0
    k = parts - 1
    t = k * limits.min_interval_s
    for window, cap in limits.caps:
        t = max(t, (k // cap) * window)
    return float(t)


def send_duration(parts: int, modems: Sequence[RateLimits]) -> float:
    """Seconds ``parts`` take shared evenly over ``modems`` (``inf`` without modems)."""
    if parts <= 0:
        return 0.0
    if not modems:
        return math.inf
    # Give each modem its share in proportion to its steady rate, then take the slowest.
    rates = [min(1 / l.min_interval_s if l.min_interval_s > 0 else math.inf,
                 *(cap / window for window, cap in l.caps)) for l in modems]
    total_rate = sum(rates)
    shares = [math.ceil(parts * r / total_rate - 1e-9) for r in rates]
    return max(modem_time(s, l) for s, l in zip(shares, modems, strict=True))


def finish_time(start: float, duration: float, quiet: QuietHours | None) -> float:
    """When sending that takes ``duration`` seconds outside quiet hours ends, from ``start``."""
    if quiet is None or math.isinf(duration):
        return start + duration
    t, left = start, duration
    for _ in range(10_000):  # at most one pass per day of sending
        if quiet.contains(t):
            t = quiet.ends_at(t)
        step = min(left, quiet.next_start(t) - t)
        t += step
        left -= step
        if left <= 0:
            return t
    return t + left


def humanize(seconds: float) -> str:
    """``12000`` → ``"3 h 20 min"``; ``45`` → ``"45 s"``; ``inf`` → ``"never (no modem)"``."""
    if math.isinf(seconds):
        return "never (no modem)"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
