"""The durable queue's API: :class:`Queue`.

The REST layer calls ``enqueue``, ``get``, ``list``, ``cancel``, ``resend``, ``stats``,
``budget``, the inbound and opt-out methods and ``apply_status_report``; the dispatcher
calls ``recover``, ``claim`` and the ``part_*`` transitions. Every method is one short
transaction through :mod:`appliance.db` (which holds the SQL, for SQLite and
PostgreSQL alike). Phone numbers arrive already in E.164. Times are UNIX seconds in the
database and timezone-aware UTC datetimes in the views.

The class is composed of one part per job: :class:`~appliance.queue.base.QueueBase`
(engine, clock, settings, notifications), :class:`~appliance.queue.intake.Intake`
(enqueue, read, operator actions), :class:`~appliance.queue.claims.Claims` (dispatcher
side, status reports, budgets, modems) and :class:`~appliance.queue.inbox.Inbox`
(inbound storage and consent).
"""

from __future__ import annotations

from appliance.db.consent import ConsentEntry, OptOutView
from appliance.db.inbound import InboundFragmentView, InboundView, StoredInbound
from appliance.db.messages import EventView, MessageView, ModemView, PartView, ReportMatch
from appliance.db.rows import Page
from appliance.queue.base import DEFAULT_REPORT_WINDOW_S  # noqa: F401 - importable from here, as before
from appliance.queue.claims import EXPIRY_SWEEP_S, Claims  # noqa: F401 - EXPIRY_SWEEP_S too
from appliance.queue.inbox import Inbox
from appliance.queue.intake import Intake

__all__ = [
    "ConsentEntry",
    "EventView",
    "InboundFragmentView",
    "InboundView",
    "MessageView",
    "ModemView",
    "OptOutView",
    "Page",
    "PartView",
    "Queue",
    "ReportMatch",
    "StoredInbound",
]


class Queue(Intake, Claims, Inbox):
    """The durable SMS queue on one SQLite file.

    ``Queue(url_or_engine)`` migrates the schema to the newest revision unless
    ``migrate=False``. ``clock`` returns UNIX seconds (tests pass a fake).
    ``max_attempts``/``backoff`` govern temporary failures; ``max_parts`` refuses longer
    bodies at enqueue; ``report_window_s`` is how old a part may be for a status report to
    match it. ``quiet_hours`` (a :class:`QuietHours`, or None) keeps ``marketing``
    messages waiting inside its window; it may be replaced at any time.
    ``sticky_sender`` marks each new message with the SIM its recipient knows, which the
    dispatcher lets wait for that SIM for at most ``sticky_wait_s`` (docs/architecture.md,
    "Sticky sender").
    """
