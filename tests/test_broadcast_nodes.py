"""Broadcasts on both engines: life cycle and stats through the data layer, and two nodes
(two services, each with its own engine) changing the same broadcast at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec, BroadcastView
from appliance.contacts import ContactBook
from appliance.db import read_tx
from appliance.queue import InvalidState, NotFound, Queue, RateLimits

NUMBERS = tuple(f"+1415555{i:04d}" for i in range(200))
REPLIER = NUMBERS[3]


def service_on(queue: Queue) -> BroadcastService:
    return BroadcastService(queue, ContactBook(queue.engine), limits=lambda: [RateLimits()])


@pytest.fixture
def nodes(db_url: str) -> Iterator[list[BroadcastService]]:
    queues = [Queue(db_url), Queue(db_url)]
    yield [service_on(q) for q in queues]
    for q in queues:
        q.close()


def held_by_status(service: BroadcastService, broadcast_id: int) -> dict[int, int]:
    """How many queued messages of the broadcast are held (1) and not (0)."""
    with read_tx(service.queue.engine) as tx:
        return {int(r["held"]): int(r["n"]) for r in tx.exec_driver_sql(
            "SELECT held, COUNT(*) AS n FROM messages WHERE broadcast_id = ? AND status = 'queued' GROUP BY held",
            (broadcast_id,),
        )}


def events_of(service: BroadcastService) -> Counter[str]:
    with read_tx(service.queue.engine) as tx:
        return Counter(r["kind"] for r in tx.exec_driver_sql(
            "SELECT kind FROM events WHERE kind IN ('broadcast_paused', 'broadcast_resumed')"
        ))


def concurrently(nodes: list[BroadcastService], fn: Callable[[BroadcastService], None]) -> list[BaseException]:
    """``fn`` on every node, each in its own thread, started together (a barrier lines them
    up); what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(nodes))

    def run(service: BroadcastService) -> None:
        try:
            start.wait()
            fn(service)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def at_once(nodes: list[BroadcastService], act: Callable[[BroadcastService], object], done: str) -> list[str]:
    """``act`` on every node at once: ``done`` for each that succeeded, ``refused`` for each
    told :class:`InvalidState`."""
    outcomes: list[str] = []

    def go(service: BroadcastService) -> None:
        try:
            act(service)
            outcomes.append(done)
        except InvalidState:
            outcomes.append("refused")

    errors = concurrently(nodes, go)
    assert not errors, errors
    return outcomes


def test_life_cycle_and_stats(nodes: list[BroadcastService]) -> None:
    service = nodes[0]
    queue = service.queue
    queue.opt_out(NUMBERS[0], source="test")
    draft = service.create(BroadcastSpec("Hello {number}", Audience(numbers=NUMBERS[:5]), name="five"))
    assert (draft.status, draft.name, draft.priority, draft.stats) == ("draft", "five", "low", None)
    assert draft.audience.numbers == NUMBERS[:5]
    view = service.start(draft.id)
    assert view.status == "running" and view.recipients == 5 and view.started_at is not None
    assert view.stats is not None and view.stats.by_status["queued"] == 4 and view.stats.by_status["suppressed"] == 1
    # Two messages go out; a recipient replies, and someone else writes.
    for modem in ("m1", "m2"):
        claim = queue.claim(modem, max_parts=10)
        assert claim is not None
        now = queue.clock()
        assert queue.begin_part(claim, claim.parts[0], now) == "go"
        queue.part_sent(claim, claim.parts[0], 10, now)
    queue.store_inbound("m1", REPLIER, "thanks", digest="r1", handled=True)
    queue.store_inbound("m1", "+19995550000", "not a recipient", digest="r2", handled=True)
    stats = service.stats(draft.id)
    assert (stats.total, stats.by_status["sent"], stats.parts_sent, stats.remaining) == (5, 2, 2, 2)
    assert stats.replies == 1
    assert len(stats.per_hour) == 1 and stats.per_hour[0][1] == 2
    assert stats.per_hour[0][0].minute == 0 and stats.per_hour[0][0].timestamp() <= queue.clock()
    listed = service.list(limit=10)
    assert [b.id for b in listed] == [draft.id] and listed[0].stats is not None and listed[0].stats.replies == 0
    assert service.pause(draft.id).status == "paused"
    assert held_by_status(service, draft.id) == {1: 2}
    with pytest.raises(InvalidState, match="is paused; only a running one can be paused"):
        service.pause(draft.id)
    assert service.resume(draft.id).status == "running"
    assert held_by_status(service, draft.id) == {0: 2}
    cancelled = service.cancel(draft.id)
    assert cancelled.status == "cancelled" and cancelled.stats is not None
    assert cancelled.stats.by_status["cancelled"] == 2 and cancelled.stats.remaining == 0
    with pytest.raises(InvalidState):
        service.resume(draft.id)
    with pytest.raises(NotFound):
        service.get(draft.id + 1)


def test_two_nodes_pause_and_resume_one_broadcast_at_once(nodes: list[BroadcastService]) -> None:
    """Both nodes flip the same broadcast as fast as they can: each change is made once
    (the other node's same change is refused), and messages always follow the status."""
    view = nodes[0].create_and_start(BroadcastSpec("Hi {number}", Audience(numbers=NUMBERS)))
    bid = view.id
    done: Counter[str] = Counter()
    lock = threading.Lock()

    def flip(service: BroadcastService) -> None:
        for i in range(40):
            action: Callable[[int], BroadcastView] = service.pause if i % 2 == 0 else service.resume
            try:
                action(bid)
            except InvalidState:
                continue
            with lock:
                done["pause" if i % 2 == 0 else "resume"] += 1

    errors = concurrently(nodes, flip)
    assert not errors, errors
    final = nodes[1].get(bid)
    # Pauses and resumes alternate: at most one more pause than resumes, as the status says.
    assert done["pause"] - done["resume"] == (1 if final.status == "paused" else 0)
    assert events_of(nodes[0]) == Counter({"broadcast_paused": done["pause"], "broadcast_resumed": done["resume"]})
    assert held_by_status(nodes[0], bid) == ({1: len(NUMBERS)} if final.status == "paused" else {0: len(NUMBERS)})

    # Both cancel at once: one wins, the other is told it is cancelled already.
    assert sorted(at_once(nodes, lambda service: service.cancel(bid), "cancelled")) == ["cancelled", "refused"]
    stats = nodes[0].stats(bid)
    assert stats.by_status["cancelled"] == len(NUMBERS) and held_by_status(nodes[0], bid) == {}


def test_two_nodes_start_one_draft_at_once(nodes: list[BroadcastService]) -> None:
    draft = nodes[0].create(BroadcastSpec("Hi", Audience(numbers=NUMBERS[:50])))
    assert sorted(at_once(nodes, lambda service: service.start(draft.id), "started")) == ["refused", "started"]
    assert nodes[1].stats(draft.id).total == 50
