"""Quiet hours from the ``[broadcasts]`` settings (the window itself is
:class:`appliance.queue.quiet.QuietHours`, which the queue's claim consults)."""

from __future__ import annotations

from typing import Any

from appliance.queue.quiet import QuietHours

__all__ = ["QuietHours", "quiet_hours_from_settings"]


def quiet_hours_from_settings(section: Any) -> QuietHours | None:
    """From a :class:`appliance.config.BroadcastsSection`; None when no window is set."""
    return QuietHours.parse(section.quiet_hours_start, section.quiet_hours_end, section.timezone)
