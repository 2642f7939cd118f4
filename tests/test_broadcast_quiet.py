"""Quiet hours and paused broadcasts in the queue: the claim skips what must wait, the idle
wake-up lands on the window's end, nothing is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from appliance.queue import InvalidRequest, Queue
from appliance.queue.quiet import QuietHours
from tests.utils.clock import FakeClock

PARIS = "Europe/Paris"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_window_crossing_midnight_in_a_timezone() -> None:
    q = QuietHours(time(21), time(8), PARIS)  # Paris is UTC+1 in January
    assert q.contains(_ts("2027-01-15T20:30:00+00:00"))  # 21:30 Paris
    assert not q.contains(_ts("2027-01-15T19:30:00+00:00"))  # 20:30 Paris
    assert q.contains(_ts("2027-01-16T06:59:00+00:00"))  # 07:59 Paris
    assert not q.contains(_ts("2027-01-16T07:00:00+00:00"))  # 08:00 Paris: the end is open
    assert q.ends_at(_ts("2027-01-15T22:00:00+00:00")) == _ts("2027-01-16T07:00:00+00:00")
    assert q.next_start(_ts("2027-01-16T07:00:00+00:00")) == _ts("2027-01-16T20:00:00+00:00")
    # Summer time: 08:00 Paris is 06:00 UTC.
    assert q.ends_at(_ts("2027-07-01T01:00:00+00:00")) == _ts("2027-07-01T06:00:00+00:00")
    day = QuietHours(time(12), time(14), "UTC")
    assert day.contains(_ts("2027-01-15T13:00:00+00:00")) and not day.contains(_ts("2027-01-15T14:00:00+00:00"))
    assert QuietHours.parse("", "", PARIS) is None
    with pytest.raises(InvalidRequest):
        QuietHours.parse("21:00", "", PARIS)
    with pytest.raises(InvalidRequest):
        QuietHours(time(8), time(8), PARIS)
    with pytest.raises(InvalidRequest):
        QuietHours(time(8), time(9), "Mars/Olympus")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(_ts("2027-01-15T21:30:00+00:00"))  # 22:30 in Paris: quiet


@pytest.fixture
def queue(db_url: str, clock: FakeClock) -> Queue:
    return Queue(db_url, clock=clock, quiet_hours=QuietHours(time(21), time(8), PARIS))


def test_claim_holds_marketing_inside_the_window_but_not_transactional(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue_many([("+14155550101", "promo")], broadcast_id=1, kind="marketing", priority="high")
    queue.enqueue_many([("+14155550102", "notice")], broadcast_id=2, kind="transactional", priority="low")
    claim = queue.claim("m1", max_parts=10)
    assert claim is not None and claim.body == "notice"  # a higher-priority promo does not go first
    assert queue.claim("m1", max_parts=10) is None
    # Idle: wake at the window's end (08:00 Paris = 07:00 UTC), not before.
    assert queue.next_wakeup("m1") == _ts("2027-01-16T07:00:00+00:00")
    clock.now = _ts("2027-01-16T07:00:00+00:00")
    claim = queue.claim("m1", max_parts=10)
    assert claim is not None and claim.body == "promo"  # waited, not dropped


def test_held_messages_are_not_claimed_and_do_not_wake_anyone(queue: Queue) -> None:
    queue.quiet_hours = None
    queue.enqueue_many([("+14155550101", "a"), ("+14155550102", "b")], broadcast_id=7, held=True)
    assert queue.claim("m1", max_parts=10) is None and queue.next_wakeup("m1") is None
    assert queue.stats()["queued"] == 2  # held is still queued to the API
    from appliance.db.engine import write_tx
    from appliance.db.sending import hold_broadcast_messages

    with write_tx(queue.engine) as conn:
        assert hold_broadcast_messages(conn, 7, held=False) == 2
    assert queue.next_wakeup("m1") is not None
    assert queue.claim("m1", max_parts=10) is not None


def test_the_claim_still_uses_its_partial_indexes(sqlite_url: str, clock: FakeClock) -> None:
    # SQLite only: the INDEXED BY hints are SQLite's (PostgreSQL's planner chooses alone).
    queue = Queue(sqlite_url, clock=clock)
    with queue.engine.connect() as conn:
        # SQLite refuses INDEXED BY when the index cannot serve the query.
        for index, quiet in (("ix_messages_claim", ""), ("ix_messages_claim_tx", "AND kind != 'marketing' ")):
            plan = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT id FROM messages INDEXED BY {index} "
                "WHERE status = 'queued' AND held = 0 AND due_at <= 1 AND parts <= 1 AND (modem IS NULL OR modem = 'x') "
                f"{quiet}ORDER BY priority, due_at, id LIMIT 1"
            ).all()
            assert index in " ".join(str(r) for r in plan)


def test_enqueue_many_suppresses_opted_out_and_refuses_too_long(queue: Queue) -> None:
    queue.opt_out("+14155550102", source="test")
    batch, first, last = queue.enqueue_many([("+14155550101", "a"), ("+14155550102", "b")], broadcast_id=3)
    assert last == first + 1
    assert [queue.get(i).status for i in (first, last)] == ["queued", "suppressed"]
    with pytest.raises(InvalidRequest, match="parts"):
        queue.enqueue_many([("+14155550101", "x" * 2000)])
    assert datetime.fromtimestamp(queue.clock(), UTC).year == 2027
