"""The data layer: the only place SQL lives, on SQLite (one appliance) or PostgreSQL
(several appliances sharing one database).

- :func:`make_engine`, :func:`read_tx`, :func:`write_tx`, :class:`Tx` — engines and short
  transactions (``engine.py``); :func:`migrate` and revisions (``migrate.py``);
- ``schema.py`` — the tables (SQLModel metadata the migrations build);
- one module per kind of record, each a set of typed functions taking a :class:`Tx`:
  ``sending`` (claims and part transitions, recovery), ``messages`` (messages, events,
  modems, the send log, status reports), ``inbound``, ``consent``, ``contacts`` (and
  groups), ``broadcasts``, ``users`` (and web sessions), ``keys``, ``outbox`` (webhooks),
  ``nodes`` (heartbeats, takeover), ``email`` (email to SMS: threads, refusals, its outbox),
  ``notify`` (cross-node wake-ups), ``stats`` (dashboard, metrics, health), ``threads`` (the
  inbox), ``copy`` (SQLite → PostgreSQL, ``db check``), ``twilio`` (the Twilio-compatible
  API's credentials and message SIDs), ``balances`` (prepaid balances read by USSD),
  ``audit`` (the audit trail), ``signals`` (signal samples), ``charts`` (per-day counts),
  ``manifest`` (a backup's notes), ``sticky`` (the SIM a number knows: sticky sender);
- ``rows`` (times, JSON columns, page cursors, filters, deletes by key) and ``types``
  (columns both engines read alike);
- :class:`MessageStatus`, :class:`PartState` and the typed errors.
"""

from __future__ import annotations

from appliance.db.engine import POSTGRESQL, SQLITE, Result, Tx, dialect, make_engine, read_tx, redact_url, write_tx
from appliance.db import errors
from appliance.db.errors import *  # noqa: F403 (named in __all__ below)
from appliance.db.migrate import current_revision, head_revision, migrate, shipped_head, shipped_revisions
from appliance.db.states import FINAL_STATES, MESSAGE_STATES, PRIORITIES, PRIORITY_NAMES, MessageStatus, PartState

__all__ = [
    "FINAL_STATES",
    "MESSAGE_STATES",
    "POSTGRESQL",
    "PRIORITIES",
    "PRIORITY_NAMES",
    "SQLITE",
    "MessageStatus",
    "PartState",
    "Result",
    "Tx",
    "current_revision",
    "dialect",
    "head_revision",
    "make_engine",
    "migrate",
    "read_tx",
    "redact_url",
    "shipped_head",
    "shipped_revisions",
    "write_tx",
    *errors.__all__,
]
