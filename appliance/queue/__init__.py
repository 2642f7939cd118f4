"""The durable SMS queue: tables, claims, scheduler, rate limits, dispatcher, crash recovery.

- :class:`Queue` — the API the REST layer and the dispatcher use (``store.py``, composed of
  ``base.py``, ``intake.py``, ``claims.py``, ``inbox.py``: one job each);
- :class:`Dispatcher` — one worker thread per modem sending what the queue holds;
- :class:`RateLimits`, :class:`SendBudget` — per-SIM caps counted from the send log;
- :class:`NodeMembership` — this appliance as a node of several sharing PostgreSQL;
- :class:`SimHealth`, :class:`SendWindow` — SIM health: pausing and resuming failing SIMs;
- :func:`make_engine`, :func:`migrate` — re-exported from :mod:`appliance.db`;
- :class:`QueueError` and its subclasses.
"""

from __future__ import annotations

from appliance.db import current_revision, head_revision, make_engine, migrate
from appliance.queue.dispatcher import Dispatcher
from appliance.queue.nodes import ModemsTaken, NodeMembership
from appliance.queue import errors
from appliance.queue.errors import *  # noqa: F403 (named in __all__ below)
from appliance.queue.ratelimit import DEFAULT_WINDOWS, BudgetView, RateLimits, SendBudget
from appliance.queue.sim_health import SendWindow, SimHealth, UnknownModem
from appliance.db.sending import Backoff, Claim, Recovery
from appliance.db.states import FINAL_STATES, MESSAGE_STATES, PRIORITIES
from appliance.queue.store import (
    EventView,
    InboundView,
    MessageView,
    ModemView,
    OptOutView,
    Page,
    PartView,
    Queue,
    ReportMatch,
)

__all__ = [
    "DEFAULT_WINDOWS",
    "FINAL_STATES",
    "MESSAGE_STATES",
    "PRIORITIES",
    "Backoff",
    "BudgetView",
    "Claim",
    "Dispatcher",
    "EventView",
    "InboundView",
    "MessageView",
    "ModemsTaken",
    "NodeMembership",
    "ModemView",
    "OptOutView",
    "Page",
    "PartView",
    "Queue",
    "RateLimits",
    "Recovery",
    "ReportMatch",
    "SendBudget",
    "SendWindow",
    "SimHealth",
    "UnknownModem",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrate",
    *errors.__all__,
]
