"""The webhook sender: a pump thread filling the outbox, one delivery thread per receiver.

Each delivery is ``POST <url>`` with the outbox row's JSON body and the headers
``Content-Type: application/json``, ``X-Appliance-Event`` (``inbound``/``status``),
``X-Appliance-Event-Id``, ``X-Appliance-Timestamp`` (UNIX seconds of this attempt) and, when
the receiver has a secret, ``X-Appliance-Signature: sha256=<hex>`` (see
:mod:`appliance.webhooks.signing`). A 2xx answer delivers the row; anything else (or a
timeout, or a refused connection) counts an attempt and schedules the next one after
``min(backoff_cap_s, backoff_base_s * 2**(failures-1))``, scaled by a random 0.5–1.0 (a
``Retry-After`` in seconds is honoured up to the cap). ``failures`` counts the receiver's
consecutive failures, and the whole receiver waits out the backoff: a receiver that is down
gets one attempt per backoff period, not one per pending event, and events are retried in
the order they were made.

Delivery is at least once: the outbox is durable, and a row delivered just before a crash
may be sent again, so receivers de-duplicate on the event id (the same on every retry). By
default the service retries forever (with the backoff capped at 5 minutes a receiver that
comes back after a day's outage gets everything within minutes); ``max_attempts`` parks a
row after that many attempts (``next_attempt_at`` = infinity, ``last_error`` says so) and
logs an error.

Several nodes may share one database: each runs the pump (they take turns) and delivers.
A node leases a few due rows at a time (``leased_by``, for long enough to attempt them all
within their timeouts), so each attempt is made by one node; the rows a failure leaves
unattempted are given back, due when the failed one is. A node that restarts takes back its
own leases at once; another node's expire. Each node backs a receiver off on its own, and
with several nodes delivering, events may reach a receiver out of order.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from appliance.config import WebhookConfig
from appliance.queue.store import Queue
from appliance.text import url_host
from appliance.webhooks.outbox import MODEM_KINDS, Outbox, OutboxEntry
from appliance.webhooks.signing import sign

if TYPE_CHECKING:  # httpx is imported when a delivery is made: most appliances have no
    import httpx   # webhook, and it costs the daemon ~5 MB of memory

__all__ = ["WebhookService"]

_log = logging.getLogger(__name__)

RETENTION_S = 7 * 86400.0
"""Delivered outbox rows are deleted after this long."""
_PRUNE_EVERY_S = 3600.0
_IDLE_WAIT_S = 5.0
_LEASE_BATCH = 10
_LEASE_MARGIN_S = 60.0


class WebhookService:
    """Turns inbound messages and status changes into signed webhook deliveries (module doc).

    ``db`` is the :class:`Queue` (its engine is used) or an engine. ``poll_interval_s`` is
    how often the pump looks for new rows (one indexed read; :meth:`kick` wakes it at once).
    ``node`` names this appliance in the rows it leases (default: the host name); nodes
    sharing a database need distinct names.
    """

    def __init__(
        self,
        db: Queue | Engine,
        webhooks: Sequence[WebhookConfig],
        *,
        clock: Callable[[], float] = time.time,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        max_attempts: int | None = None,
        poll_interval_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        node: str | None = None,
    ) -> None:
        engine = db.engine if isinstance(db, Queue) else db
        self.outbox = Outbox(engine, clock=clock)
        self.clock = clock
        self.node = node or socket.gethostname()
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_attempts = max_attempts
        self.poll_interval_s = poll_interval_s
        self._transport = transport
        # One receiver per URL: a URL listed twice keeps its first entry.
        self.webhooks: dict[str, WebhookConfig] = {}
        for hook in webhooks:
            self.webhooks.setdefault(str(hook.url), hook)
        self.subscriptions: dict[str, list[str]] = {"inbound": [], "status": [], **{k: [] for k in MODEM_KINDS}}
        for url, hook in self.webhooks.items():
            for event in hook.events:
                self.subscriptions[event].append(url)
        self._stopping = threading.Event()
        self._pump_wake = threading.Event()
        self._deliver_wake: dict[str, threading.Event] = {url: threading.Event() for url in self.webhooks}
        self._threads: list[threading.Thread] = []
        self._last_prune = float("-inf")
        self._failures: dict[str, int] = {url: 0 for url in self.webhooks}
        self._blocked_until: dict[str, float] = {url: float("-inf") for url in self.webhooks}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the pump and one delivery thread per receiver (nothing when none is configured)."""
        if self._threads or not self.webhooks:
            return
        self._stopping.clear()
        try:
            self.outbox.release_node(self.node)
        except Exception:  # noqa: BLE001 - the database is down: the leases expire anyway
            _log.exception("could not take back this node's webhook leases")
        self._threads.append(threading.Thread(target=self._pump_loop, name="webhooks-pump", daemon=True))
        for url in self.webhooks:
            self._threads.append(threading.Thread(
                target=self._deliver_loop, args=(url,), name=f"webhooks-{url_host(url)}", daemon=True
            ))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the threads (an attempt in flight finishes or times out first)."""
        self._stopping.set()
        self._pump_wake.set()
        for event in self._deliver_wake.values():
            event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def kick(self) -> None:
        """New inbound/status rows were committed: pump now instead of at the next poll."""
        self._pump_wake.set()

    # ------------------------------------------------------------------ one step each (tests call these)

    def pump(self) -> int:
        """Move new rows into the outbox; returns how many outbox rows were made."""
        made = self.outbox.pump(self.subscriptions)
        if made:
            for event in self._deliver_wake.values():
                event.set()
        now = self.clock()
        if now - self._last_prune >= _PRUNE_EVERY_S:
            self._last_prune = now
            self.outbox.prune(now - RETENTION_S)
        return made

    def deliver_due(self, url: str, *, client: httpx.Client | None = None) -> int:
        """Lease the due rows of receiver ``url`` and attempt them in order until one fails
        (the receiver then waits out its backoff); returns how many were delivered."""
        own = client is None
        http = client or self._client(url)
        hook = self.webhooks[url]
        lease_s = hook.timeout_s * _LEASE_BATCH + _LEASE_MARGIN_S
        delivered = 0
        try:
            while not self._stopping.is_set() and self.clock() >= self._blocked_until[url]:
                pending = self.outbox.lease(url, self.node, lease_s=lease_s, limit=_LEASE_BATCH)
                if not pending:
                    break
                try:
                    while pending and not self._stopping.is_set():
                        ok = self._attempt(http, hook, pending[0])
                        del pending[0]
                        if not ok:
                            break
                        delivered += 1
                finally:
                    if pending:  # not attempted: due again when this receiver's backoff ends
                        self.outbox.release([e.id for e in pending], self.node,
                                            next_attempt_at=max(self.clock(), self._blocked_until[url]))
        finally:
            if own:
                http.close()
        return delivered

    # ------------------------------------------------------------------ threads

    def _pump_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.outbox.has_new():
                    while self.pump() and not self._stopping.is_set():
                        pass
            except Exception:  # noqa: BLE001 - a locked or busy database: try again next poll
                _log.exception("webhook pump failed; retrying")
            self._pump_wake.wait(self.poll_interval_s)
            self._pump_wake.clear()

    def _deliver_loop(self, url: str) -> None:
        wake = self._deliver_wake[url]
        with self._client(url) as http:
            while not self._stopping.is_set():
                try:
                    self.deliver_due(url, client=http)
                    next_at = max(self.outbox.next_due(url) or math.inf, self._blocked_until[url])
                except Exception:  # noqa: BLE001 - the database, not the receiver: retry soon
                    _log.exception("webhook delivery to %s failed unexpectedly", url_host(url))
                    next_at = None
                wait = _IDLE_WAIT_S
                if next_at is not None and math.isfinite(next_at):
                    wait = min(_IDLE_WAIT_S, max(0.0, next_at - self.clock()))
                wake.wait(wait)
                wake.clear()

    def _client(self, url: str) -> httpx.Client:
        import httpx

        hook = self.webhooks[url]
        return httpx.Client(timeout=hook.timeout_s, follow_redirects=False, transport=self._transport)

    def _attempt(self, http: httpx.Client, hook: WebhookConfig, entry: OutboxEntry) -> bool:
        import httpx

        timestamp = int(self.clock())
        body = entry.payload.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sms-appliance-webhooks",
            "X-Appliance-Event": entry.event,
            "X-Appliance-Event-Id": entry.event_id,
            "X-Appliance-Timestamp": str(timestamp),
        }
        secret = hook.secret.get_secret_value()
        if secret:
            headers["X-Appliance-Signature"] = sign(secret, timestamp, body)
        attempts = entry.attempts + 1
        retry_after: float | None = None
        try:
            response = http.post(entry.url, content=body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {hook.timeout_s:g} s"
        except httpx.HTTPError as exc:
            # The exception text may quote the URL (and a token in its query): keep the host.
            error = f"{type(exc).__name__}: {exc}".replace(entry.url, url_host(entry.url))
        else:
            if 200 <= response.status_code < 300:
                self.outbox.mark_delivered(entry.id, attempts=attempts)
                self._failures[entry.url] = 0
                _log.debug("webhook %s delivered to %s (attempt %d)", entry.event_id, url_host(entry.url), attempts)
                return True
            error = f"HTTP {response.status_code}"
            retry_after = _retry_after(response)
        self._failures[entry.url] += 1
        delay = self._backoff(self._failures[entry.url])
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap_s))
        next_at = self.clock() + delay
        self._blocked_until[entry.url] = next_at
        if self.max_attempts is not None and attempts >= self.max_attempts:
            self.outbox.mark_failed(entry.id, attempts=attempts, next_attempt_at=math.inf,
                                    error=f"gave up after {attempts} attempts; last: {error}", node=self.node)
            _log.error("webhook %s to %s given up after %d attempts (%s)",
                       entry.event_id, url_host(entry.url), attempts, error)
            return False
        self.outbox.mark_failed(entry.id, attempts=attempts, next_attempt_at=next_at, error=error, node=self.node)
        _log.warning("webhook %s to %s failed (%s); attempt %d, next in %.1f s",
                     entry.event_id, url_host(entry.url), error, attempts, delay)
        return False

    def _backoff(self, failures: int) -> float:
        base = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(failures - 1, 32))
        return base * (0.5 + random.random() / 2)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the exponential backoff is good enough
