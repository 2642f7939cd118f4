"""Prometheus metrics of one API app (its own :class:`CollectorRegistry`, not the global one).

Everything but the send latency is read from the store and the modems at scrape time by a
custom collector, so the numbers are the durable truth and survive restarts. The send
latency is the one thing only the sender sees: the daemon calls
:meth:`Metrics.observe_send` after each ``AT+CMGS`` (``appliance.daemon.TimedModem`` does).

Families: ``appliance_messages{state}``, ``appliance_queue_depth``,
``appliance_parts_sent_total{modem}``, ``appliance_send_seconds{modem}`` (histogram),
``appliance_modem_online{modem}``, ``appliance_modem_signal_dbm{modem}``,
``appliance_modem_budget_left{modem,window}``, ``appliance_modem_balance{modem}`` (the
last prepaid balance read by USSD), ``appliance_modem_paused{modem}`` (SIM health),
``appliance_inbound_messages_total``,
``appliance_node_up{node,state}``, ``appliance_node_heartbeat_age_seconds{node}``,
``appliance_webhook_failing_deliveries``, ``appliance_webhook_failed_attempts``,
``appliance_store_up``, ``appliance_start_time_seconds``; with email to SMS on,
``appliance_email_mails_total{result}`` (accepted/refused since start),
``appliance_email_sms_total`` and ``appliance_email_outbox{state}`` (answers sent/pending).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.api.services import Services
from appliance.api.store import StoreStats
from appliance.queue.sim_health import sim_health_of

__all__ = ["SEND_BUCKETS", "Metrics"]

_log = logging.getLogger(__name__)

# AT+CMGS answers in 1–5 s on a live network; 60 s is the send timeout.
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)


class Metrics:
    """The metrics of one app: ``registry``, :meth:`observe_send`, :meth:`render`."""

    def __init__(self, services: Services) -> None:
        self.registry = CollectorRegistry()
        self.send_seconds = Histogram(
            "appliance_send_seconds",
            "Seconds from handing a part's PDU to the modem until its answer (+CMGS or error).",
            ["modem"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreCollector(services))
        self.registry.register(EmailCollector(services))

    def observe_send(self, modem: str, seconds: float) -> None:
        """Record one send attempt through ``modem`` that took ``seconds`` (thread-safe)."""
        self.send_seconds.labels(modem=modem).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _families() -> dict[str, Metric]:
    return {
        "messages": GaugeMetricFamily(
            "appliance_messages", "Messages in the store by state.", labels=["state"]),
        "depth": GaugeMetricFamily(
            "appliance_queue_depth", "Messages waiting to be sent (state queued)."),
        "sent": CounterMetricFamily(
            "appliance_parts_sent", "SMS parts handed to the network, per modem (send log).",
            labels=["modem"]),
        "online": GaugeMetricFamily(
            "appliance_modem_online", "1 when the modem is online.", labels=["modem"]),
        "dbm": GaugeMetricFamily(
            "appliance_modem_signal_dbm", "Signal strength in dBm (absent when unknown).",
            labels=["modem"]),
        "budget": GaugeMetricFamily(
            "appliance_modem_budget_left", "Parts the SIM may still send in each rate window.",
            labels=["modem", "window"]),
        "balance": GaugeMetricFamily(
            "appliance_modem_balance", "The SIM's last prepaid balance read by USSD (balance_ussd).",
            labels=["modem"]),
        "paused": GaugeMetricFamily(
            "appliance_modem_paused", "1 when the SIM is paused by its health check or an admin ([health.sim]).",
            labels=["modem"]),
        "inbound": CounterMetricFamily(
            "appliance_inbound_messages", "Received SMS stored (reassembled)."),
        "wh_failing": GaugeMetricFamily(
            "appliance_webhook_failing_deliveries",
            "Webhook deliveries not yet delivered after at least one failed attempt."),
        "wh_attempts": GaugeMetricFamily(
            "appliance_webhook_failed_attempts", "Failed webhook attempts of deliveries in the outbox."),
        "store_up": GaugeMetricFamily(
            "appliance_store_up", "1 when the database answered this scrape."),
        "started": GaugeMetricFamily(
            "appliance_start_time_seconds", "When the appliance started (UNIX seconds)."),
        "node_up": GaugeMetricFamily(
            "appliance_node_up", "Each appliance sharing the database: 1 alive, 0 silent or stopped.",
            labels=["node", "state"]),
        "twiml_bad": CounterMetricFamily(
            "appliance_twilio_bad_twiml", "TwiML answers to inbound webhooks that could not be followed "
                                          "(since start; logged, not retried)."),
        "node_silent": GaugeMetricFamily(
            "appliance_node_heartbeat_age_seconds", "Seconds since each node's last heartbeat.", labels=["node"]),
    }


class StoreCollector(Collector):
    """Reads the store, the modems and the dispatcher's budgets at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> Iterator[Metric]:
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        s = self.services
        f = _families()
        f["started"].add_metric([], s.started_at)
        twilio = getattr(s, "twilio", None)  # the daemon's TwilioService; absent in API-only tests
        if twilio is not None:
            f["twiml_bad"].add_metric([], twilio.bad_twiml)
        try:
            stats = StoreStats(s.queue.engine)
            counts = s.queue.stats()
            sent = stats.sent_counts(since=0.0)
            inbound = stats.inbound_total()
            webhooks = stats.webhook_failures()
            nodes = s.queue.nodes()
            balances = s.balances.latest() if getattr(s, "balances", None) is not None else {}
            paused = sim_health_of(s).paused()
        except Exception:  # a scrape must still answer when the database does not
            _log.exception("metrics: the database did not answer")
            f["store_up"].add_metric([], 0)
        else:
            f["store_up"].add_metric([], 1)
            for state, n in counts.items():
                f["messages"].add_metric([state], n)
            f["depth"].add_metric([], counts.get("queued", 0))
            for modem, c in sorted(sent.items()):
                f["sent"].add_metric([modem], c.total)
            f["inbound"].add_metric([], inbound)
            f["wh_failing"].add_metric([], webhooks.failing)
            f["wh_attempts"].add_metric([], webhooks.failed_attempts)
            for modem_name, reading in sorted(balances.items()):
                if reading.amount is not None:
                    f["balance"].add_metric([modem_name], reading.amount)
            for name in sorted({m.name for m in list(s.modems)} | set(paused)):
                f["paused"].add_metric([name], 1 if name in paused else 0)
            for node in nodes:
                f["node_up"].add_metric([node.name, node.state], 1 if node.state == "alive" else 0)
                f["node_silent"].add_metric([node.name], round(node.silent_s, 1))
        try:
            budgets = s.dispatcher.budgets()
        except Exception:
            _log.exception("metrics: could not read the send budgets")
            budgets = {}
        for modem in list(s.modems):
            name = modem.name
            f["online"].add_metric([name], 1 if modem.online else 0)
            signal = getattr(modem, "signal", None)
            if signal is not None and signal.dbm is not None:
                f["dbm"].add_metric([name], signal.dbm)
            budget = budgets.get(name)
            if budget is not None:
                f["budget"].add_metric([name, "minute"], budget.minute_left)
                f["budget"].add_metric([name, "hour"], budget.hour_left)
                f["budget"].add_metric([name, "day"], budget.day_left)
                if budget.month_left is not None:
                    f["budget"].add_metric([name, "month"], budget.month_left)
        yield from f.values()


class EmailCollector(Collector):
    """Email to SMS (when the daemon runs it): mails accepted and refused since start, the
    SMS they made, and the outbox of answers."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        email = getattr(self.services, "email", None)
        if email is None:
            return
        mails = CounterMetricFamily("appliance_email_mails", "Mails the SMTP side accepted or refused since start.",
                                    labels=["result"])
        mails.add_metric(["accepted"], email.counters.accepted)
        mails.add_metric(["refused"], email.counters.refused)
        yield mails
        sms = CounterMetricFamily("appliance_email_sms", "SMS queued from mails since start.")
        sms.add_metric([], email.counters.sms)
        yield sms
        try:
            sent, pending = email.outbox_counts()
        except Exception:  # a scrape must still answer when the database does not
            _log.exception("metrics: the database did not answer")
            return
        outbox = GaugeMetricFamily("appliance_email_outbox", "Answer mails through the relay, by state.",
                                   labels=["state"])
        outbox.add_metric(["sent"], sent)
        outbox.add_metric(["pending"], pending)
        yield outbox
