"""The queue store on its own: enqueue, claims, state machine, recovery, reports, consent.

A fake clock drives time; the dispatcher's role is played by calling the claim and part
transitions directly, exactly as a worker does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.queue import (
    Backoff,
    DuplicateIdempotencyKey,
    InvalidRequest,
    InvalidState,
    NotFound,
    Queue,
    RateLimits,
)
from appliance.db.engine import write_tx
from appliance.db.sending import Claim
from tests.utils.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db_url: str, clock: FakeClock) -> Queue:
    q = Queue(db_url, clock=clock, max_attempts=3, backoff=Backoff(base_s=10, cap_s=100, jitter=0.5))
    yield q
    q.close()


def send_all(queue: Queue, claim: Claim, mrs: list[int] | None = None) -> None:
    """Play a worker that sends every part of ``claim`` successfully."""
    for i, part in enumerate(claim.parts):
        assert queue.begin_part(claim, part, queue.clock()) == "go"
        queue.part_sent(claim, part, (mrs or list(range(len(claim.parts))))[i], queue.clock())


LONG = "x" * 200  # two GSM-7 parts


# ---------------------------------------------------------------- enqueue and reads

def test_enqueue_returns_views_and_get_shows_them(queue: Queue) -> None:
    views = queue.enqueue(["+15550000001", "+15550000002"], "hello", metadata={"campaign": "a"})
    assert [v.to for v in views] == ["+15550000001", "+15550000002"]
    assert all(v.status == "queued" and v.parts == 1 and v.encoding == "gsm7" for v in views)
    got = queue.get(views[1].id)
    assert got.to == "+15550000002" and got.body == "hello" and got.metadata == {"campaign": "a"}
    assert got.created_at.tzinfo is UTC
    assert queue.enqueue(["+15550000003"], LONG)[0].parts == 2


def test_enqueue_validates_its_arguments(queue: Queue) -> None:
    with pytest.raises(InvalidRequest, match="priority"):
        queue.enqueue(["+15550000001"], "hi", priority="urgent")
    with pytest.raises(InvalidRequest, match="recipient"):
        queue.enqueue([], "hi")
    with pytest.raises(InvalidRequest, match="body"):
        queue.enqueue(["+15550000001"], "")
    with pytest.raises(InvalidRequest, match="parts"):
        queue.enqueue(["+15550000001"], "y" * 153 * 11)
    with pytest.raises(NotFound):
        queue.get(12345)


def test_bulk_enqueue_of_100k_recipients(queue: Queue) -> None:
    # How fast: bench/queue_bench.py (a). Here: one transaction, consecutive ids, all stored.
    numbers = [f"+1555{i:07d}" for i in range(100_000)]
    views = queue.enqueue(numbers, "bulk")
    assert len(views) == 100_000 and len({v.id for v in views}) == 100_000
    assert [v.id for v in views] == list(range(views[0].id, views[0].id + 100_000))
    assert queue.stats()["queued"] == 100_000
    assert queue.get(views[-1].id).to == numbers[-1]


def test_idempotency_key_returns_the_original_messages(queue: Queue) -> None:
    first = queue.enqueue(["+15550000001", "+15550000002"], "once", idempotency_key="k-1")
    again = queue.enqueue(["+15550000001", "+15550000002"], "once", idempotency_key="k-1")
    assert [v.id for v in again] == [v.id for v in first]
    assert queue.stats()["queued"] == 2
    with pytest.raises(DuplicateIdempotencyKey):
        queue.enqueue(["+15550000001"], "different body", idempotency_key="k-1")


def test_list_is_newest_first_with_filters_and_cursor(queue: Queue) -> None:
    ids = [v.id for v in queue.enqueue([f"+1555000{i:04d}" for i in range(7)], "page")]
    queue.cancel(ids[2])
    page1 = queue.list(limit=3)
    assert [m.id for m in page1.items] == ids[::-1][:3] and page1.next_cursor
    page2 = queue.list(limit=3, cursor=page1.next_cursor)
    page3 = queue.list(limit=3, cursor=page2.next_cursor)
    assert [m.id for m in page2.items + page3.items] == ids[::-1][3:]
    assert page3.next_cursor is None
    assert [m.id for m in queue.list(status="cancelled").items] == [ids[2]]
    assert [m.id for m in queue.list(to="+15550000004").items] == [ids[4]]
    with pytest.raises(InvalidRequest, match="cursor"):
        queue.list(cursor="not-a-cursor")


# ---------------------------------------------------------------- claim order

def test_claim_order_is_priority_then_send_at_then_age(queue: Queue, clock: FakeClock) -> None:
    low = queue.enqueue(["+15550000001"], "low", priority="low")[0]
    normal_old = queue.enqueue(["+15550000002"], "normal old")[0]
    clock.advance(1)
    normal_new = queue.enqueue(["+15550000003"], "normal new")[0]
    later = queue.enqueue(["+15550000004"], "high later", priority="high", send_at=clock.now + 30)[0]
    high = queue.enqueue(["+15550000005"], "high now", priority="high")[0]
    order = []
    while (c := queue.claim("m1", max_parts=255)) is not None:
        order.append(c.message_id)
    assert order == [high.id, normal_old.id, normal_new.id, low.id]
    clock.advance(30)
    assert queue.claim("m1", max_parts=255).message_id == later.id


def test_send_at_as_datetime(queue: Queue, clock: FakeClock) -> None:
    at = datetime.fromtimestamp(clock.now + 60, UTC)
    view = queue.enqueue(["+15550000001"], "later", send_at=at)[0]
    assert view.send_at == at
    assert queue.claim("m1", max_parts=255) is None
    assert queue.next_wakeup("m1") == pytest.approx(clock.now + 60)
    clock.advance(60)
    assert queue.claim("m1", max_parts=255).message_id == view.id


def test_claim_respects_part_budget(queue: Queue) -> None:
    queue.enqueue(["+15550000001"], LONG)
    small = queue.enqueue(["+15550000002"], "short")[0]
    claim = queue.claim("m1", max_parts=1)
    assert claim.message_id == small.id
    assert queue.claim("m1", max_parts=1) is None
    assert queue.claim("m1", max_parts=2).total == 2


def test_a_message_is_claimed_once(queue: Queue) -> None:
    queue.enqueue(["+15550000001"], "one")
    assert queue.claim("m1", max_parts=255) is not None
    assert queue.claim("m2", max_parts=255) is None
    assert queue.stats()["sending"] == 1


def test_concat_refs_are_per_modem_persisted_and_wrap(queue: Queue, db_url: str, clock: FakeClock) -> None:
    queue.enqueue([f"+1555000{i:04d}" for i in range(3)], LONG)
    refs = [queue.claim("m1", max_parts=255).concat_ref for _ in range(3)]
    assert refs[1] == (refs[0] + 1) % 256 and refs[2] == (refs[1] + 1) % 256
    with write_tx(queue.engine) as conn:
        conn.exec_driver_sql("UPDATE modems SET next_concat_ref = 255 WHERE name = 'm1'")
    reopened = Queue(db_url, clock=clock)
    reopened.enqueue(["+15550000010", "+15550000011"], LONG)
    assert [reopened.claim("m1", max_parts=255).concat_ref for _ in range(2)] == [255, 0]


# ---------------------------------------------------------------- the state machine

def test_parts_go_submitting_then_sent_and_message_sent(queue: Queue) -> None:
    mid = queue.enqueue(["+15550000001"], LONG)[0].id
    claim = queue.claim("m1", max_parts=255)
    first, second = claim.parts
    assert queue.begin_part(claim, first, queue.clock()) == "go"
    assert [p.state for p in queue.get(mid).part_details] == ["submitting", "queued"]
    assert queue.part_sent(claim, first, 17, queue.clock()) is False
    assert queue.get(mid).status == "sending"
    queue.begin_part(claim, second, queue.clock())
    assert queue.part_sent(claim, second, 18, queue.clock()) is True
    msg = queue.get(mid)
    assert msg.status == "sent" and msg.modem == "m1"
    assert [(p.state, p.mr, p.modem) for p in msg.part_details] == [("sent", 17, "m1"), ("sent", 18, "m1")]


def test_cancel_only_while_queued(queue: Queue) -> None:
    a, b = queue.enqueue(["+15550000001", "+15550000002"], "c")
    assert queue.cancel(a.id).status == "cancelled"
    claim = queue.claim("m1", max_parts=255)
    assert claim.message_id == b.id
    with pytest.raises(InvalidState, match="sending"):
        queue.cancel(b.id)
    with pytest.raises(NotFound):
        queue.cancel(999)
    assert [e.kind for e in queue.events(a.id)] == ["cancelled"]


def test_temporary_failure_backs_off_then_fails_after_max_attempts(queue: Queue, clock: FakeClock) -> None:
    mid = queue.enqueue(["+15550000001"], "retry me")[0].id
    delays = []
    for attempt in range(1, 4):
        claim = queue.claim("m1", max_parts=255)
        assert claim is not None and claim.attempts == attempt - 1
        part = claim.parts[0]
        queue.begin_part(claim, part, clock.now)
        state = queue.part_retry(claim, part, "CMS 42 congestion", forget_send=True)
        if attempt < 3:
            assert state == "queued"
            due = queue.next_wakeup("m1")
            delays.append(due - clock.now)
            assert queue.claim("m1", max_parts=255) is None  # still backing off
            clock.advance(due - clock.now)
        else:
            assert state == "failed"
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20  # base 10 s, doubling, jitter 50 %
    msg = queue.get(mid)
    assert msg.status == "failed" and "gave up after 3 attempts" in msg.error
    assert queue.send_times("m1", since=0) == []  # nothing reached the network
    assert [e.kind for e in queue.events(mid)] == ["retry", "retry", "failed"]


def test_failover_only_while_no_part_has_left(queue: Queue, clock: FakeClock) -> None:
    a = queue.enqueue(["+15550000001"], LONG)[0].id
    claim = queue.claim("m1", max_parts=255)
    queue.begin_part(claim, claim.parts[0], clock.now)
    queue.release(claim, "modem vanished", part=claim.parts[0])
    assert queue.get(a).modem is None
    other = queue.claim("m2", max_parts=255)  # nothing left yet: any modem may take it
    assert other.message_id == a and other.modem == "m2"
    send_part = other.parts[0]
    queue.begin_part(other, send_part, clock.now)
    queue.part_sent(other, send_part, 5, clock.now)
    queue.part_retry(other, other.parts[1], "CMS 41", forget_send=True)
    clock.advance(1000)
    assert queue.claim("m1", max_parts=255) is None  # pinned to m2 now
    pinned = queue.claim("m2", max_parts=255)
    assert pinned.message_id == a and [p.seq for p in pinned.parts] == [2]
    assert pinned.concat_ref == other.concat_ref  # same reference for the remaining part


def test_permanent_failure_and_unknown_are_final(queue: Queue, clock: FakeClock) -> None:
    a, b = (v.id for v in queue.enqueue(["+15550000001", "+15550000002"], LONG))
    ca = queue.claim("m1", max_parts=255)
    queue.begin_part(ca, ca.parts[0], clock.now)
    queue.part_failed(ca, ca.parts[0], "CMS 21 rejected")
    cb = queue.claim("m1", max_parts=255)
    queue.begin_part(cb, cb.parts[0], clock.now)
    queue.part_unknown(cb, cb.parts[0], "no answer")
    assert queue.get(a).status == "failed"
    assert [p.state for p in queue.get(a).part_details] == ["failed", "cancelled"]
    assert queue.get(b).status == "unknown"
    assert [p.state for p in queue.get(b).part_details] == ["unknown", "cancelled"]
    assert queue.claim("m1", max_parts=255) is None


def test_opt_out_suppresses_at_enqueue_and_before_first_part(queue: Queue, clock: FakeClock) -> None:
    assert queue.opt_out("+15550000001", source="keyword STOP") is True
    assert queue.opt_out("+15550000001", source="api") is False
    views = queue.enqueue(["+15550000001", "+15550000002"], "promo")
    assert [v.status for v in views] == ["suppressed", "queued"]
    claim = queue.claim("m1", max_parts=255)
    queue.opt_out("+15550000002", source="api")
    assert queue.begin_part(claim, claim.parts[0], clock.now) == "suppressed"
    assert queue.get(views[1].id).status == "suppressed"
    assert queue.is_opted_out("+15550000002")
    assert queue.opt_in("+15550000002", source="keyword START") is True
    assert not queue.is_opted_out("+15550000002")
    log = queue.consent_log("+15550000002")
    assert [(e[1], e[2]) for e in log] == [("opt_out", "api"), ("opt_in", "keyword START")]
    assert [o.number for o in queue.list_opt_outs().items] == ["+15550000001"]


def test_validity_expires_queued_and_claimed_messages(queue: Queue, clock: FakeClock) -> None:
    a = queue.enqueue(["+15550000001"], "soon", validity_s=60)[0]
    assert a.expires_at is not None
    clock.advance(61)
    assert queue.claim("m1", max_parts=255) is None
    assert queue.get(a.id).status == "expired"
    b = queue.enqueue(["+15550000002"], "claimed", validity_s=60)[0]
    claim = queue.claim("m1", max_parts=255)
    clock.advance(61)
    assert queue.begin_part(claim, claim.parts[0], clock.now) == "expired"
    assert queue.get(b.id).status == "expired"


# ---------------------------------------------------------------- crash recovery and resend

def test_recover_makes_submitting_unknown_and_requeues_claims(queue: Queue, clock: FakeClock) -> None:
    a, b, c = (v.id for v in queue.enqueue(["+15550000001", "+15550000002", "+15550000003"], LONG))
    ca = queue.claim("m1", max_parts=255)  # mid-PDU when the process died
    queue.begin_part(ca, ca.parts[0], clock.now)
    queue.claim("m2", max_parts=255)  # claimed, nothing started
    cc = queue.claim("m3", max_parts=255)  # first part sent, second not started
    queue.begin_part(cc, cc.parts[0], clock.now)
    queue.part_sent(cc, cc.parts[0], 9, clock.now)

    result = Queue(queue.engine, clock=clock).recover()
    assert result.unknown == (a,) and set(result.requeued) == {b, c}
    assert queue.get(a).status == "unknown"
    assert [p.state for p in queue.get(a).part_details] == ["unknown", "cancelled"]
    assert queue.get(b).status == "queued" and queue.get(b).modem is None
    assert queue.get(c).status == "queued" and queue.get(c).modem == "m3"  # pinned
    again = queue.claim("m3", max_parts=255)
    assert again.message_id in (b, c)


def test_resend_of_unknown_is_a_new_audited_attempt(queue: Queue, clock: FakeClock) -> None:
    mid = queue.enqueue(["+15550000001"], "maybe sent")[0].id
    with pytest.raises(InvalidState):
        queue.resend(mid)
    claim = queue.claim("m1", max_parts=255)
    queue.begin_part(claim, claim.parts[0], clock.now)
    queue.part_unknown(claim, claim.parts[0], "no answer after Ctrl-Z")
    view = queue.resend(mid, by="alice")
    assert view.status == "queued" and view.resends == 1 and view.part_details == ()
    resent = [e for e in queue.events(mid) if e.kind == "resent"][0]
    assert resent.detail["by"] == "alice" and resent.detail["previous_status"] == "unknown"
    assert resent.detail["previous_parts"][0]["state"] == "unknown"
    claim = queue.claim("m1", max_parts=255)
    send_all(queue, claim)
    assert queue.get(mid).status == "sent"


# ---------------------------------------------------------------- status reports

def test_status_reports_deliver_all_parts(queue: Queue) -> None:
    mid = queue.enqueue(["+15550000001"], LONG)[0].id
    send_all(queue, queue.claim("m1", max_parts=255), mrs=[40, 41])
    r = queue.apply_status_report("m1", 40, "+15550000001", 0x00)
    assert r is not None and r.outcome == "delivered" and r.message_status == "sent"
    pending = queue.apply_status_report("m1", 41, "15550000001", 0x20)  # temporary: keep waiting
    assert pending.outcome == "pending" and queue.get(mid).status == "sent"
    done = queue.apply_status_report("m1", 41, "+15550000001", 0x00)
    assert done.message_status == "delivered"
    msg = queue.get(mid)
    assert msg.status == "delivered" and msg.delivered_at is not None
    assert all(p.state == "delivered" for p in msg.part_details)


def test_status_report_matching_modem_recipient_window_and_newest(queue: Queue, clock: FakeClock) -> None:
    old = queue.enqueue(["+15550000001"], "old")[0].id
    send_all(queue, queue.claim("m1", max_parts=255), mrs=[7])
    clock.advance(3600)
    new = queue.enqueue(["+15550000001"], "new")[0].id
    send_all(queue, queue.claim("m1", max_parts=255), mrs=[7])  # the MR wrapped around
    assert queue.apply_status_report("m2", 7, "+15550000001", 0) is None  # wrong modem
    assert queue.apply_status_report("m1", 7, "+15559999999", 0) is None  # wrong recipient
    assert queue.apply_status_report("m1", 7, "+15550000001", 0).message_id == new  # newest wins
    assert queue.get(old).status == "sent"
    clock.advance(73 * 3600)
    assert queue.apply_status_report("m1", 7, "+15550000001", 0) is None  # outside the window


def test_failed_status_report_fails_the_message(queue: Queue) -> None:
    mid = queue.enqueue(["+15550000001"], "x")[0].id
    send_all(queue, queue.claim("m1", max_parts=255), mrs=[3])
    r = queue.apply_status_report("m1", 3, "+15550000001", 0x41)
    assert r.outcome == "failed" and r.message_status == "failed"
    msg = queue.get(mid)
    assert msg.status == "failed" and "undelivered" in msg.error
    assert msg.part_details[0].report_status == 0x41


# ---------------------------------------------------------------- budgets, inbound, modems

def test_budget_comes_from_the_durable_send_log(queue: Queue, db_url: str, clock: FakeClock) -> None:
    queue.enqueue([f"+1555000{i:04d}" for i in range(4)], "b")
    for _ in range(4):
        send_all(queue, queue.claim("m1", max_parts=255))
        clock.advance(5)
    limits = RateLimits(min_interval_s=10, per_minute=6, per_hour=100, per_day=1000)
    restarted = Queue(db_url, clock=clock)  # a restart does not reset the budget
    view = restarted.budget("m1", limits)
    assert (view.minute_left, view.hour_left, view.day_left) == (2, 96, 996)
    assert view.next_allowed_at == pytest.approx(clock.now - 5 + 10)
    assert restarted.budget("m2", limits).minute_left == 6


def test_inbound_and_modems_are_recorded(queue: Queue, clock: FakeClock) -> None:
    a = queue.record_inbound("m1", "+15550000001", "STOP")
    clock.advance(1)
    b = queue.record_inbound("m1", "+15550000002", "hello", parts=2, metadata={"ref": 5})
    page = queue.list_inbound(limit=1)
    assert page.items[0].id == b.id and page.next_cursor
    assert queue.list_inbound(cursor=page.next_cursor).items[0].id == a.id
    queue.upsert_modem("m1", imei="490154203237518", state="online")
    queue.upsert_modem("m1", state="offline")
    (m,) = queue.modems()
    assert (m.name, m.imei, m.state) == ("m1", "490154203237518", "offline")


def test_stats_counts_every_state(queue: Queue) -> None:
    queue.opt_out("+15550000003", source="api")
    ids = [v.id for v in queue.enqueue(["+15550000001", "+15550000002", "+15550000003"], "s")]
    queue.cancel(ids[1])
    stats = queue.stats()
    assert stats["queued"] == 1 and stats["cancelled"] == 1 and stats["suppressed"] == 1
    assert stats["delivered"] == 0 and set(stats) >= {"sending", "sent", "unknown", "expired", "failed"}
