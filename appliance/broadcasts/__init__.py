"""Broadcasts: personalised mass texts with preview, schedule, quiet hours and progress.

- :class:`BroadcastService` — create (draft), preview, start (or wait for approval:
  approve / reject, :class:`ApprovalRefused`), pause, resume, cancel,
  progress and stats;
- :class:`Template` — ``{field}``, ``{field|default}``, ``{{``/``}}``;
- :class:`Audience`, :class:`BroadcastSpec`, :class:`Preview`, :class:`BroadcastView`,
  :class:`BroadcastStats`;
- :func:`send_duration`, :func:`humanize` — how long under the modems' caps;
- :func:`quiet_hours_from_settings` — the ``[broadcasts]`` quiet-hours window.
"""

from __future__ import annotations

from appliance.broadcasts.estimate import finish_time, humanize, modem_time, send_duration
from appliance.broadcasts.quiet import QuietHours, quiet_hours_from_settings
from appliance.broadcasts.service import (
    KINDS,
    ApprovalRefused,
    Audience,
    BroadcastService,
    BroadcastSpec,
    BroadcastStats,
    BroadcastView,
    Preview,
    Sample,
    approval_limit,
)
from appliance.broadcasts.templates import Template, TemplateError

__all__ = [
    "KINDS",
    "ApprovalRefused",
    "Audience",
    "BroadcastService",
    "BroadcastSpec",
    "BroadcastStats",
    "BroadcastView",
    "Preview",
    "QuietHours",
    "Sample",
    "Template",
    "TemplateError",
    "approval_limit",
    "finish_time",
    "humanize",
    "modem_time",
    "quiet_hours_from_settings",
    "send_duration",
]
