"""Opt-outs reach queued work; STOP confirmations and modem preference at enqueue."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.queue import Queue

NUMBER = "+15550000001"


@pytest.fixture
def queue(db_url: str) -> Queue:
    q = Queue(db_url)
    yield q
    q.close()


def test_opt_out_suppresses_messages_already_queued(queue: Queue) -> None:
    queued = queue.enqueue([NUMBER] * 3 + ["+15550000002"], "news")
    assert queue.opt_out(NUMBER, source="sms:STOP")
    states = [queue.get(m.id).status for m in queued]
    assert states == ["suppressed", "suppressed", "suppressed", "queued"]
    assert {e.kind for e in queue.events(queued[0].id)} >= {"suppressed"}
    assert queue.opt_out(NUMBER, source="api") is False  # already on the list; still logged
    assert [c[1] for c in queue.consent_log(NUMBER)] == ["opt_out", "opt_out"]


def test_a_claimed_message_is_stopped_before_its_first_part(queue: Queue) -> None:
    (msg,) = queue.enqueue([NUMBER], "news")
    claim = queue.claim("m1", max_parts=10)
    assert claim is not None
    queue.opt_out(NUMBER, source="sms:STOP")
    assert queue.begin_part(claim, claim.parts[0], queue.clock()) == "suppressed"
    assert queue.get(msg.id).status == "suppressed"


def test_stop_confirmation_reaches_an_opted_out_number(queue: Queue) -> None:
    queue.opt_out(NUMBER, source="sms:STOP")
    (normal,) = queue.enqueue([NUMBER], "news")
    (reply,) = queue.enqueue([NUMBER], "You are unsubscribed.", ignore_opt_out=True, modem="m2")
    assert normal.status == "suppressed"
    assert reply.status == "queued"
    assert queue.claim("m1", max_parts=10) is None  # the reply prefers the modem it came in on
    claim = queue.claim("m2", max_parts=10)
    assert claim is not None and claim.message_id == reply.id
    assert queue.begin_part(claim, claim.parts[0], queue.clock()) == "go"
    assert queue.part_sent(claim, claim.parts[0], 7, queue.clock())
    assert queue.get(reply.id).status == "sent"
    assert "sent" in {e.kind for e in queue.events(reply.id)}


def test_opt_in_lets_new_messages_through(queue: Queue) -> None:
    queue.opt_out(NUMBER, source="sms:STOP")
    assert queue.opt_in(NUMBER, source="sms:START")
    (msg,) = queue.enqueue([NUMBER], "welcome back")
    assert msg.status == "queued"


def test_sent_and_next_claim_commit_together(queue: Queue) -> None:
    first, second, third = queue.enqueue(["+14155550101", NUMBER, "+14155550103"], "chain")
    claim = queue.claim("m1", max_parts=10)
    assert claim is not None and claim.message_id == first.id
    assert queue.begin_part(claim, claim.parts[0], queue.clock()) == "go"
    queue.opt_out(NUMBER, source="api")  # the second message is suppressed at once
    nxt = queue.part_sent_and_next(claim, claim.parts[0], 5, queue.clock(), max_parts=10)
    assert queue.get(first.id).status == "sent"
    assert queue.get(second.id).status == "suppressed"
    assert nxt is not None and nxt.message_id == third.id
    detail = queue.get(third.id)
    assert detail.status == "sending"
    assert [p.state for p in detail.part_details] == ["submitting"]  # durable before the PDU
    assert queue.part_sent_and_next(nxt, nxt.parts[0], 6, queue.clock(), max_parts=10) is None
    assert queue.get(third.id).status == "sent"
