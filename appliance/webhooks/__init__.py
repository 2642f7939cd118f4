"""Webhooks: signed JSON events (``inbound``, ``status``) delivered at least once from a
durable outbox.

- :class:`WebhookService` — pump and delivery threads (``start``/``stop``/``kick``);
- :class:`Outbox`, :class:`OutboxEntry` — the outbox table;
- :func:`sign`, :func:`verify` — the HMAC-SHA256 signature, for senders and receivers.
"""

from __future__ import annotations

from appliance.webhooks.outbox import STATUS_KINDS, Outbox, OutboxEntry
from appliance.webhooks.service import WebhookService
from appliance.webhooks.signing import sign, verify

__all__ = ["STATUS_KINDS", "Outbox", "OutboxEntry", "WebhookService", "sign", "verify"]
