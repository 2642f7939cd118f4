"""Webhooks: the outbox pump, signed deliveries to a real HTTP receiver on localhost,
retries with backoff, at-least-once across a restart, status events, signature checks."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from appliance.config import WebhookConfig
from appliance.inbound import InboundService
from appliance.modem.types import InboundSms
from appliance.pdu import decode, encode_deliver
from appliance.queue import Queue
from appliance.webhooks import Outbox, WebhookService, sign, verify
from tests.utils.receiver import PostReceiver
from tests.utils.wait import wait_until

SECRET = "s3cret-for-tests"
ALICE = "+15551230001"


class Receiver(PostReceiver):
    """A webhook receiver on 127.0.0.1: answers the queued status codes (then 200) and keeps
    every request it got."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.delay_s = 0.0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        super().__init__()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str | None, bytes]:
        with self.lock:
            self.requests.append(({k.lower(): v for k, v in headers.items()}, body))
            code = self.answers.pop(0) if self.answers else 200
            delay = self.delay_s
        if delay:
            time.sleep(delay)
        return code, None, b""

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def queue(db_url: str) -> Iterator[Queue]:
    q = Queue(db_url)
    yield q
    q.close()


def receive(queue: Queue, text: str, sender: str = ALICE) -> None:
    (pdu,) = encode_deliver(sender, text, timestamp=datetime(2026, 3, 1, tzinfo=UTC))
    InboundService(queue).handle_sms(InboundSms("sim-a", pdu, decode(pdu)))


def hook(url: str, **kwargs: object) -> WebhookConfig:
    return WebhookConfig(url=url, secret=SECRET, timeout_s=kwargs.pop("timeout_s", 2.0), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- signatures


def test_sign_and_verify() -> None:
    body = b'{"id":"inb_1"}'
    sig = sign(SECRET, 1_800_000_000, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, "1800000000", body, sig, now=1_800_000_100)
    assert verify(SECRET, 1_800_000_000, body.decode(), sig, now=1_800_000_000)
    assert not verify(SECRET, 1_800_000_000, b'{"id":"inb_2"}', sig, now=1_800_000_000)  # tampered body
    assert not verify(SECRET, 1_800_000_000, body, sig, now=1_800_000_301)  # too old
    assert not verify(SECRET, 1_800_000_001, body, sig, now=1_800_000_001)  # other timestamp
    assert not verify("other", 1_800_000_000, body, sig, now=1_800_000_000)
    assert not verify(SECRET, "yesterday", body, sig)
    assert not verify(SECRET, int(time.time()), body, "sha256=" + "0" * 64)


# ---------------------------------------------------------------------- delivery


def test_inbound_event_retried_after_500_then_delivered_once(queue: Queue, receiver: Receiver) -> None:
    receive(queue, "Hello there")
    receiver.answers = [500]
    url = receiver.url("/hook?token=abc")
    service = WebhookService(queue, [hook(url)], backoff_base_s=0.05, poll_interval_s=0.05)
    service.start()
    try:
        wait_until(lambda: service.outbox.entries(pending=False), what='service.outbox.entries(pending=False)')
    finally:
        service.stop()
    (entry,) = service.outbox.entries()
    assert (entry.event_id, entry.event, entry.attempts, entry.last_error) == ("inb_1", "inbound", 2, None)
    assert len(receiver.requests) == 2
    for headers, body in receiver.requests:
        assert headers["content-type"] == "application/json"
        assert headers["x-appliance-event"] == "inbound"
        assert headers["x-appliance-event-id"] == "inb_1"
        assert verify(SECRET, headers["x-appliance-timestamp"], body, headers["x-appliance-signature"])
        assert body.decode() == entry.payload
    event = json.loads(receiver.requests[1][1])
    assert (event["id"], event["type"]) == ("inb_1", "inbound")
    data = event["data"]
    assert (data["id"], data["from"], data["body"], data["parts"], data["complete"], data["keyword"],
            data["modem"]) == (1, ALICE, "Hello there", 1, True, None, "sim-a")
    assert data["received_at"].endswith("Z")


def test_outbox_survives_a_restart(queue: Queue, receiver: Receiver, db_url: str) -> None:
    receive(queue, "STOP")  # a keyword row: handled before its event is made
    receiver.answers = [503] * 1000
    url = receiver.url()
    first = WebhookService(queue, [hook(url)], backoff_base_s=0.05, backoff_cap_s=0.1, poll_interval_s=0.05)
    first.start()
    wait_until(lambda: len(receiver.requests) >= 2, what='len(receiver.requests) >= 2')
    first.stop()
    (entry,) = first.outbox.entries(pending=True)
    assert entry.attempts >= 2 and entry.last_error == "HTTP 503"
    assert json.loads(entry.payload)["data"]["keyword"] == "stop"

    # Restart on a fresh engine (a new process): the row is still owed and gets delivered.
    receiver.answers = []
    again = Queue(db_url)
    second = WebhookService(again, [hook(url)], backoff_base_s=0.05, backoff_cap_s=0.1, poll_interval_s=0.05)
    second.start()
    try:
        wait_until(lambda: second.outbox.entries(pending=False), what='second.outbox.entries(pending=False)')
        assert second.pump() == 0  # nothing is made twice
    finally:
        second.stop()
        again.close()
    assert [e.event_id for e in second.outbox.entries()] == ["inb_1"]
    ids = {h["x-appliance-event-id"] for h, _b in receiver.requests}
    assert ids == {"inb_1"}


def test_pump_waits_for_unhandled_rows(queue: Queue) -> None:
    outbox = Outbox(queue.engine)
    subs = {"inbound": ["http://127.0.0.1:9/a"], "status": []}
    unhandled = queue.store_inbound("m1", ALICE, "STOP", digest="d1", keyword="stop", handled=False)
    queue.store_inbound("m1", ALICE, "later", digest="d2", handled=True)
    assert outbox.has_new() is False
    assert outbox.pump(subs) == 0
    queue.mark_inbound_handled(unhandled.id)
    assert outbox.has_new() is True
    assert outbox.pump(subs) == 2
    assert outbox.pump(subs) == 0 and outbox.has_new() is False
    assert [e.event_id for e in outbox.entries()] == ["inb_1", "inb_2"]


def test_status_events_after_a_send(queue: Queue, receiver: Receiver) -> None:
    receive(queue, "not for the status hook")
    msg = queue.enqueue([ALICE], "Your code is 1234")[0]
    claim = queue.claim("sim-a", max_parts=10)
    assert claim is not None
    now = time.time()
    assert queue.begin_part(claim, claim.parts[0], now) == "go"
    queue.part_sent(claim, claim.parts[0], 17, now)
    queue.apply_status_report("sim-a", 17, ALICE, 0)
    queue.opt_out("+15551230009", source="test")
    suppressed = queue.enqueue(["+15551230009"], "blocked")[0]

    service = WebhookService(queue, [hook(receiver.url("/status"), events=["status"])], poll_interval_s=0.05)
    service.start()
    try:
        wait_until(lambda: len(service.outbox.entries(pending=False)) == 3,
                   what='len(service.outbox.entries(pending=False)) == 3')
    finally:
        service.stop()
    events = [json.loads(body) for _h, body in sorted(receiver.requests, key=lambda r: r[0]["x-appliance-event-id"])]
    by_status = {e["data"]["status"]: e for e in events}
    assert set(by_status) == {"sent", "delivered", "suppressed"}
    assert all(e["type"] == "status" and e["id"].startswith("evt_") for e in events)
    sent = by_status["sent"]["data"]
    assert (sent["message_id"], sent["to"], sent["modem"], sent["error"]) == (msg.id, ALICE, "sim-a", None)
    assert by_status["delivered"]["data"]["message_id"] == msg.id
    blocked = by_status["suppressed"]["data"]
    assert (blocked["message_id"], blocked["error"]) == (suppressed.id, "recipient opted out")
    assert {h["x-appliance-event"] for h, _b in receiver.requests} == {"status"}


def test_timeout_counts_as_a_failure_and_max_attempts_parks(
    queue: Queue, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receive(queue, "hi")
    receiver.delay_s = 0.5
    url = receiver.url("/private/path?token=abc")
    service = WebhookService(queue, [hook(url, timeout_s=0.1)], backoff_base_s=0.01, max_attempts=2,
                             poll_interval_s=0.05)
    with caplog.at_level(logging.WARNING, logger="appliance.webhooks"):
        service.start()
        try:
            wait_until(lambda: (e := service.outbox.entries()) and e[0].attempts == 2,
                       what='(e := service.outbox.entries()) and e[0].attemp…')
            time.sleep(0.1)
        finally:
            service.stop()
    (entry,) = service.outbox.entries()
    assert entry.delivered_at is None and entry.next_attempt_at == float("inf")
    assert entry.last_error is not None and entry.last_error.startswith("gave up after 2 attempts")
    assert "no answer within 0.1 s" in entry.last_error
    assert "127.0.0.1" in caplog.text
    assert "token=abc" not in caplog.text and "/private" not in caplog.text and SECRET not in caplog.text


def test_kick_wakes_the_pump(queue: Queue, receiver: Receiver) -> None:
    service = WebhookService(queue, [hook(receiver.url())], poll_interval_s=30)
    service.start()
    try:
        time.sleep(0.1)  # the pump's first look found nothing; its next poll is 30 s away
        receive(queue, "wake up")
        service.kick()
        wait_until(lambda: receiver.requests, timeout=3, what='receiver.requests')
    finally:
        service.stop()
    assert json.loads(receiver.requests[0][1])["data"]["body"] == "wake up"


def test_no_receivers_no_threads(queue: Queue) -> None:
    service = WebhookService(queue, [])
    service.start()
    try:
        assert not [t for t in threading.enumerate() if t.name.startswith("webhooks")]
    finally:
        service.stop()


def test_a_failing_receiver_is_backed_off_as_a_whole_and_order_is_kept(queue: Queue, receiver: Receiver) -> None:
    for text in ("one", "two", "three"):
        receive(queue, text)
    receiver.answers = [500, 500]
    service = WebhookService(queue, [hook(receiver.url())], backoff_base_s=0.4, poll_interval_s=0.05)
    service.start()
    try:
        wait_until(lambda: receiver.requests, what='receiver.requests')
        time.sleep(0.1)  # the backoff is 0.2 s at least
        # One attempt, not one per pending event, while the receiver is backed off.
        assert [h["x-appliance-event-id"] for h, _b in receiver.requests] == ["inb_1"]
        wait_until(lambda: len(service.outbox.entries(pending=False)) == 3,
                   what='len(service.outbox.entries(pending=False)) == 3')
    finally:
        service.stop()
    assert [h["x-appliance-event-id"] for h, _b in receiver.requests] == ["inb_1", "inb_1", "inb_1", "inb_2", "inb_3"]
    assert [e.attempts for e in service.outbox.entries()] == [3, 1, 1]


# ---------------------------------------------------------------------- several nodes


def test_two_nodes_deliver_each_event_exactly_once(db_url: str, receiver: Receiver) -> None:
    """Two appliances on one database (each its own engine and node name) pump and deliver
    while both keep storing inbound messages: every event reaches the receiver once."""
    nodes = [Queue(db_url), Queue(db_url)]
    url = receiver.url()
    services = [
        WebhookService(q, [hook(url)], poll_interval_s=0.02, node=f"node-{i}") for i, q in enumerate(nodes)
    ]

    def store(q: Queue, first: int) -> None:
        for i in range(first, first + 100):
            q.store_inbound("sim-a", ALICE, f"message {i}", digest=f"d{i}", handled=True)

    try:
        for service in services:
            service.start()
        writers = [threading.Thread(target=store, args=(q, 100 * i)) for i, q in enumerate(nodes)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        wait_until(lambda: len(services[0].outbox.entries(pending=False)) == 200, timeout=30,
                   what='len(services[0].outbox.entries(pending=False)) …')
        time.sleep(0.2)  # a duplicate attempt, if any, would land now
    finally:
        for service in services:
            service.stop()
        for q in nodes:
            q.close()
    with receiver.lock:
        seen = Counter(h["x-appliance-event-id"] for h, _b in receiver.requests)
    assert set(seen) == {f"inb_{i}" for i in range(1, 201)}
    assert set(seen.values()) == {1}
    entries = services[0].outbox.entries()
    assert len(entries) == 200 and all(e.attempts == 1 for e in entries)
    assert {e.leased_by for e in entries} <= {"node-0", "node-1"}


def test_a_lease_keeps_other_nodes_off_and_a_restart_takes_it_back(queue: Queue) -> None:
    for text in ("one", "two", "three"):
        queue.store_inbound("sim-a", ALICE, text, digest=text, handled=True)
    url = "http://127.0.0.1:9/hook"
    outbox = Outbox(queue.engine)
    assert outbox.pump({"inbound": [url]}) == 3
    leased = outbox.lease(url, "node-a", lease_s=60, limit=2)
    assert [e.event_id for e in leased] == ["inb_1", "inb_2"] and {e.leased_by for e in leased} == {"node-a"}
    (other,) = outbox.lease(url, "node-b", lease_s=60)  # node-a's rows are not due for node-b
    assert other.event_id == "inb_3"
    assert outbox.lease(url, "node-b", lease_s=60) == []
    # A failed attempt ends the lease; a stale node's late failure does not touch a row leased since.
    outbox.mark_failed(leased[0].id, attempts=1, next_attempt_at=0.0, error="HTTP 500", node="node-a")
    (again,) = outbox.lease(url, "node-b", lease_s=60)
    assert again.id == leased[0].id
    outbox.mark_failed(leased[0].id, attempts=1, next_attempt_at=0.0, error="late", node="node-a")
    assert outbox.entries(event_id="inb_1")[0].leased_by == "node-b"
    # node-a restarts: what it still held is due again at once.
    assert outbox.release_node("node-a") == 1
    assert [e.event_id for e in outbox.due(url)] == ["inb_2"]
    # Rows given back are due when asked, and only the holder can give them back.
    assert outbox.release([other.id], "node-a") == 0
    assert outbox.release([other.id], "node-b", next_attempt_at=0.0) == 1
    assert [e.event_id for e in outbox.due(url)] == ["inb_2", "inb_3"]


def test_the_pump_waits_for_a_gap_in_the_ids_to_fill(postgres_database: str) -> None:
    """PostgreSQL hands out ids before commit: a row committed late must not be skipped,
    and a rolled-back id must not stop the pump for good."""
    from tests.utils.db import empty_tables

    empty_tables(postgres_database)
    queue = Queue(postgres_database)
    outbox = Outbox(queue.engine)
    subs = {"inbound": ["http://127.0.0.1:9/a"]}
    insert = ("INSERT INTO inbound (modem, sender, body, received_at, parts, complete, handled_at) "
              "VALUES ('sim-a', %s, %s, 1, 1, 1, 1)")
    pooled = queue.engine.raw_connection()
    try:
        slow = pooled.driver_connection
        slow.execute(insert, (ALICE, "slow"))  # id 1, not committed yet
        queue.store_inbound("sim-a", ALICE, "quick", digest="q", handled=True)  # id 2, committed
        assert outbox.pump(subs) == 0  # inb_2 waits for inb_1
        slow.commit()
        assert outbox.pump(subs) == 2
        slow.execute(insert, (ALICE, "never"))  # id 3, rolled back
        slow.rollback()
        queue.store_inbound("sim-a", ALICE, "after", digest="a", handled=True)  # id 4
        assert outbox.pump(subs) == 0
        time.sleep(0.6)
        assert outbox.pump(subs) == 1
    finally:
        pooled.close()
        queue.close()
    assert [e.event_id for e in outbox.entries()] == ["inb_1", "inb_2", "inb_4"]
