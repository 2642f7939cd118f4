"""Several nodes on one database: registration, takeover of a silent node, fencing,
caps that follow the SIM, and the races two nodes run into (PostgreSQL and SQLite)."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.db import nodes as nodes_db
from appliance.db.engine import write_tx
from appliance.db.nodes import NodeNameTaken
from appliance.queue import ModemsTaken, NodeMembership, Queue

LONG = "y" * 200  # two parts


def member(queue: Queue, name: str, modems: list[str], lease_s: float = 0.6) -> NodeMembership:
    node = NodeMembership(queue, name, modems=modems, lease_s=lease_s, beat_s=lease_s / 6, version="test")
    node.join()
    return node


def test_a_silent_nodes_work_is_taken_over_like_a_crash(db_url: str) -> None:
    north, south = Queue(db_url), Queue(db_url)
    a = member(north, "north", ["n1"])
    b = member(south, "south", ["s1"])
    ids = [v.id for v in north.enqueue([f"+1415555{i:04d}" for i in range(3)], "hello")]
    long_id = north.enqueue(["+14155559999"], LONG)[0].id
    mid_send = north.claim("n1", max_parts=10)  # its part is handed to the modem, then silence
    assert mid_send is not None and north.begin_part(mid_send, mid_send.parts[0], time.time()) == "go"
    waiting = north.claim("n1", max_parts=10)  # claimed, nothing sent yet
    assert waiting is not None
    half = north.claim("n1", max_parts=10)  # a two-part message: part 1 left, part 2 not yet
    while half is not None and half.message_id != long_id:
        half = north.claim("n1", max_parts=10)
    assert half is not None
    assert north.begin_part(half, half.parts[0], time.time()) == "go"
    north.part_sent(half, half.parts[0], 7, time.time())

    b.beat_once()
    assert b.takeovers == []  # north's lease has not run out
    time.sleep(0.8)
    b.beat_once()
    assert b.takeovers == ["north"]
    assert north.get(mid_send.message_id).status == "unknown"
    assert north.get(waiting.message_id).status == "queued"
    # The rest of a half-sent message cannot follow through another SIM.
    assert north.get(long_id).status == "failed" and "resend it whole" in (north.get(long_id).error or "")
    assert b.take_over_silent() == []  # once only

    # North wakes up: its old claim is no longer its own (fenced by the claim's mark) ...
    assert north.begin_part(waiting, waiting.parts[0], time.time()) == "gone"
    # ... and the survivor sends the work.
    again = south.claim("s1", max_parts=10)
    assert again is not None and again.message_id in ids
    # North's next heartbeat notices the takeover and registers afresh.
    a.beat_once()
    assert a.may_send()
    states = {n.name: n.state for n in a.nodes()}
    assert states == {"north": "alive", "south": "alive"}
    for q in (north, south):
        q.close()


def test_a_node_name_in_use_on_another_host_is_refused(db_url: str) -> None:
    queue = Queue(db_url)
    with write_tx(queue.engine) as tx:
        nodes_db.register(tx, "north", host="other-host", pid=1, version="x", api_url=None, lease_s=60)
    with pytest.raises(NodeNameTaken) as caught:
        member(queue, "north", [])
    assert caught.value.host == "other-host"
    with write_tx(queue.engine) as tx:  # after a clean stop the name is free again
        nodes_db.stop(tx, "north")
    member(queue, "north", [])
    queue.close()


def test_a_modem_driven_by_a_running_node_is_not_taken(db_url: str) -> None:
    queue = Queue(db_url)
    member(queue, "north", ["sim-a"], lease_s=60)
    with pytest.raises(ModemsTaken) as caught:
        member(queue, "south", ["sim-a", "sim-b"], lease_s=60)
    assert caught.value.clashes == {"sim-a": "north"}
    queue.close()


def test_caps_follow_the_sim_to_another_node(db_url: str) -> None:
    queue = Queue(db_url)
    queue.enqueue([f"+1415555{i:04d}" for i in range(3)], "counted")
    for _ in range(3):  # sent by modem "north-1" holding SIM 8901...
        claim = queue.claim("north-1", max_parts=10, sim="8901260000000000001")
        assert claim is not None
        assert queue.begin_part(claim, claim.parts[0], time.time()) == "go"
        queue.part_sent(claim, claim.parts[0], 1, time.time())
    # The SIM moved into modem "south-7" on another node: its sends still count.
    assert len(queue.send_times("8901260000000000001", since=time.time() - 60)) == 3
    assert queue.send_times("south-7", since=time.time() - 60) == []
    queue.close()


def test_one_idempotency_key_posted_to_two_nodes_at_once_enqueues_once(db_url: str) -> None:
    queues = [Queue(db_url) for _ in range(4)]
    results: list[list[int]] = []
    barrier = threading.Barrier(len(queues))

    def post(q: Queue) -> None:
        barrier.wait()
        results.append([v.id for v in q.enqueue(["+14155550100", "+14155550101"], "once", idempotency_key="k")])

    threads = [threading.Thread(target=post, args=(q,)) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({tuple(r) for r in results}) == 1
    assert queues[0].stats()["queued"] == 2
    for q in queues:
        q.close()


def test_two_nodes_claiming_at_once_never_take_the_same_message(db_url: str) -> None:
    queues = [Queue(db_url) for _ in range(3)]
    queues[0].enqueue([f"+1415555{i:04d}" for i in range(120)], "race")
    taken: list[int] = []
    lock = threading.Lock()

    def drain(q: Queue, modem: str) -> None:
        while True:
            claim = q.claim(modem, max_parts=10)
            if claim is None:
                return
            with lock:
                taken.append(claim.message_id)

    threads = [threading.Thread(target=drain, args=(q, f"m{i}")) for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 120 and len(set(taken)) == 120
    for q in queues:
        q.close()


def test_an_opt_out_on_one_node_stops_a_claim_on_another(db_url: str) -> None:
    north, south = Queue(db_url), Queue(db_url)
    [view] = north.enqueue(["+14155550100"], "to be stopped")
    claim = north.claim("n1", max_parts=10)
    assert claim is not None
    assert south.opt_out("+14155550100", source="sms:1") is True
    assert north.begin_part(claim, claim.parts[0], time.time()) == "suppressed"
    assert north.get(view.id).status == "suppressed"
    for q in (north, south):
        q.close()
