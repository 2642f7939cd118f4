"""How long a broadcast takes under the modems' caps, in seconds and in words.

A modem that starts with an empty budget can send part ``k`` (0-based) no earlier than
``k × min_interval`` and, for each window of length ``W`` capped at ``C`` parts, no earlier
than ``⌊k / C⌋ × W`` (bursts fill a window, the next burst waits for it to slide). The
parts are shared evenly between the modems (round-robin), so the broadcast lasts as long
as the busiest modem's share. Sending time itself (seconds per part at the modem) is not
counted. Quiet hours stretch the time of a marketing broadcast: sending stops inside the
window and resumes at its end.

With the sticky sender (:func:`sticky_duration`), parts whose recipient knows one of the
modems' SIMs wait for that SIM for at most ``wait_s``: each SIM sends those it can within
``wait_s`` itself, the rest is shared by all from then on (docs/architecture.md,
"Sticky sender").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from appliance.queue.quiet import QuietHours
from appliance.queue.ratelimit import RateLimits

__all__ = ["finish_time", "humanize", "modem_time", "parts_within", "send_duration", "sticky_duration"]


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


def parts_within(seconds: float, limits: RateLimits, *, most: int) -> int:
    """How many parts (at most ``most``) one modem sends within ``seconds`` of its first."""
    if most <= 0 or seconds < 0:
        return 0
    lo, hi = 1, most  # modem_time grows with the parts: the largest count that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if modem_time(mid, limits) <= seconds:
            lo = mid
        else:
            hi = mid - 1
    return lo


def sticky_duration(parts: int, modems: Sequence[RateLimits], sticky: Sequence[int], wait_s: float) -> float:
    """Seconds ``parts`` take over ``modems`` when ``sticky[i]`` of them wait for modem
    ``i``'s SIM (for at most ``wait_s``): the longest of the even share
    (:func:`send_duration`), each SIM's own parts, and — for the parts a SIM could not
    send within ``wait_s`` — ``wait_s`` plus their even share."""
    base = send_duration(parts, modems)
    if not modems or parts <= 0:
        return base
    longest, left = base, 0
    for n, limits in zip(sticky, modems, strict=True):
        own = parts_within(wait_s, limits, most=n)
        longest = max(longest, modem_time(own, limits))
        left += n - own
    if left > 0:
        longest = max(longest, wait_s + send_duration(left, modems))
    return longest


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
