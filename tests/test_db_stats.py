"""The read-side statistics and the inbox queries (``appliance.db.stats``,
``appliance.db.threads``) on both engines."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from appliance.db import stats as stats_db
from appliance.db import threads as threads_db
from appliance.db.engine import POSTGRESQL, SQLITE, dialect, read_tx, write_tx
from appliance.db.errors import InvalidRequest
from appliance.db.migrate import shipped_head
from appliance.queue import Queue

T0 = 1_700_000_000.0


@pytest.fixture
def queue(db_url: str) -> Iterator[Queue]:
    q = Queue(db_url, clock=lambda: T0)
    yield q
    q.close()


def receive(q: Queue, sender: str, body: str, at: float, keyword: str | None = None) -> None:
    q.store_inbound("sim-a", sender, body, digest=f"{sender}:{body}:{at}", received_at=at, keyword=keyword)


def forged(key_json: str) -> str:
    """A cursor whose JSON is ``key_json`` (what a client could make up)."""
    return base64.urlsafe_b64encode(key_json.encode()).decode().rstrip("=")


# ---------------------------------------------------------------------- counters


def test_counters_for_metrics_and_the_api(queue: Queue) -> None:
    views = queue.enqueue(["+14155550100", "+14155550101", "+14155550102"], "x")
    queue.opt_out("+14155550109", source="test")
    [refused] = queue.enqueue(["+14155550109"], "x", idempotency_key="k1")
    with write_tx(queue.engine) as tx:
        tx.exec_driver_sql("INSERT INTO send_log (modem, at) VALUES ('a', ?), ('a', ?), ('b', ?)",
                           (T0 - 100, T0 + 5, T0 + 6))
        tx.exec_driver_sql(
            "INSERT INTO webhook_outbox (event_id, url, event, payload, created_at, attempts, next_attempt_at, "
            "delivered_at) VALUES ('e1', 'u', 'inbound', '{}', 0, 3, 0, NULL), "
            "('e2', 'u', 'inbound', '{}', 0, 0, 0, NULL), ('e3', 'u', 'inbound', '{}', 0, 4, 0, 1), "
            "('e4', 'u', 'inbound', '{}', 0, 1, 0, 1)"
        )
    receive(queue, "+14155550100", "hi", T0)
    receive(queue, "+14155550100", "hi", T0)  # the same PDU read twice: stored once
    receive(queue, "+14155550101", "yo", T0 + 1)
    with read_tx(queue.engine) as tx:
        assert stats_db.queue_depth(tx) == 3
        assert stats_db.sent_counts(tx, since=T0) == {
            "a": stats_db.SentCounts(since=1, total=2), "b": stats_db.SentCounts(since=1, total=1),
        }
        assert stats_db.inbound_total(tx) == 2
        # failing: e1; failed attempts: 3 (e1) + 0 (e2) + 3 (e3, delivered at its 4th) + 0 (e4)
        assert stats_db.webhook_failures(tx) == stats_db.WebhookFailures(failing=1, failed_attempts=6)
        entry = stats_db.get_opt_out(tx, "+14155550109")
        assert entry is not None and entry.source == "test" and entry.created_at.timestamp() == T0
        assert stats_db.get_opt_out(tx, "+14155550100") is None
        assert stats_db.batch_exists(tx, "k1") and not stats_db.batch_exists(tx, "k2")
        assert stats_db.suppressed_at_enqueue(tx, [v.id for v in views] + [refused.id]) == {refused.id}
        assert stats_db.suppressed_at_enqueue(tx, []) == set()


def test_today_counts_and_a_broadcasts_problems(queue: Queue) -> None:
    a, b, c, d = queue.enqueue([f"+1415555010{i}" for i in range(4)], "x")
    with write_tx(queue.engine) as tx:
        tx.exec_driver_sql("UPDATE messages SET status = 'sending' WHERE id = ?", (a.id,))
        tx.exec_driver_sql("UPDATE messages SET status = 'delivered', sent_at = ?, delivered_at = ?, "
                           "updated_at = ? WHERE id = ?", (T0 + 1, T0 + 2, T0 + 2, b.id))
        tx.exec_driver_sql("UPDATE messages SET status = 'failed', error = 'no', broadcast_id = 7, "
                           "updated_at = ? WHERE id = ?", (T0 + 3, c.id))
        tx.exec_driver_sql("UPDATE messages SET status = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
                           (T0 - 50, T0 - 50, d.id))  # yesterday's
    receive(queue, "+14155550100", "old", T0 - 10)
    receive(queue, "+14155550100", "new", T0 + 10)
    with read_tx(queue.engine) as tx:
        counts = stats_db.today_counts(tx, since=T0)
        problems = stats_db.broadcast_problems(tx, 7)
    assert counts == stats_db.TodayCounts(queued=0, sending=1, sent=1, delivered=1, failed=1, suppressed=0,
                                          received=1)
    assert problems == [stats_db.ProblemMessage(c.id, c.to, "failed", "no")]


def test_due_backlog_and_last_send_per_modem(queue: Queue) -> None:
    first, second = queue.enqueue(["+14155550100", "+14155550101"], "x")
    with write_tx(queue.engine) as tx:
        tx.exec_driver_sql("UPDATE messages SET modem = 'b' WHERE id = ?", (second.id,))
        tx.exec_driver_sql("INSERT INTO send_log (modem, at) VALUES ('a', ?), ('a', ?)", (T0 - 5, T0 - 1))
    with read_tx(queue.engine) as tx:
        assert stats_db.due_backlog(tx, "a", due_before=T0) == stats_db.DueBacklog(1, T0)
        assert stats_db.due_backlog(tx, "b", due_before=T0).count == 2
        assert stats_db.due_backlog(tx, "a", due_before=T0 - 1) == stats_db.DueBacklog(0, None)
        assert stats_db.last_send_at(tx, "a") == T0 - 1
        assert stats_db.last_send_at(tx, "b") is None


def test_catalogue_and_integrity_checks(queue: Queue) -> None:
    with read_tx(queue.engine) as tx:
        assert stats_db.has_column(tx, "messages", "held")
        assert not stats_db.has_column(tx, "messages", "no_such_column")
        assert not stats_db.has_column(tx, "no_such_table", "id")
        assert stats_db.table_exists(tx, "messages") and not stats_db.table_exists(tx, "no_such_table")
        assert stats_db.schema_revision(tx) == shipped_head()
        report = stats_db.check_integrity(tx, quick=True)
        assert report.ok and report.problems == () and report.revision == shipped_head()
        assert stats_db.check_integrity(tx).ok
    queue.enqueue(["+14155550100"], "x")
    with read_tx(queue.engine) as tx:
        assert stats_db.count_messages(tx) == 1
    assert dialect(queue.engine) in (SQLITE, POSTGRESQL)


# ---------------------------------------------------------------------- the inbox


def three_senders(q: Queue) -> None:
    """Interleaved replies; ann's newest is not her highest id (stored late)."""
    receive(q, "+14155550001", "Hello from Ann", T0 + 10)
    receive(q, "+14155550002", "STOP", T0 + 20, keyword="stop")
    receive(q, "+14155550003", "Bo here", T0 + 30)
    receive(q, "+14155550001", "HELP", T0 + 40, keyword="help")
    receive(q, "+14155550002", "thanks", T0 + 50)
    receive(q, "+14155550003", "BO AGAIN", T0 + 60)
    receive(q, "+14155550001", "an older one, read late", T0 + 5)


def test_thread_list_shows_each_senders_newest_body_and_keyword(queue: Queue) -> None:
    three_senders(queue)
    with read_tx(queue.engine) as tx:
        page = threads_db.list_threads(tx)
    assert page.next_cursor is None
    assert [(t.sender, t.body, t.keyword, t.last_at, t.count) for t in page.items] == [
        ("+14155550003", "BO AGAIN", None, T0 + 60, 2),
        ("+14155550002", "thanks", None, T0 + 50, 2),
        ("+14155550001", "HELP", "help", T0 + 40, 3),
    ]


def test_thread_list_pages_through_ties_without_skipping(queue: Queue) -> None:
    three_senders(queue)
    for sender in ("+14155550004", "+14155550005"):
        receive(queue, sender, f"same time from {sender}", T0 + 60)
    receive(queue, "+14155550005", "same time, stored later", T0 + 60)
    seen, cursor = [], None
    while True:
        with read_tx(queue.engine) as tx:
            page = threads_db.list_threads(tx, limit=1, cursor=cursor)
        seen += [(t.sender, t.body) for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [
        ("+14155550005", "same time, stored later"), ("+14155550004", "same time from +14155550004"),
        ("+14155550003", "BO AGAIN"), ("+14155550002", "thanks"), ("+14155550001", "HELP"),
    ]


def test_thread_search_is_case_insensitive_and_literal(queue: Queue) -> None:
    three_senders(queue)
    receive(queue, "+14155550006", "50% off_today", T0 + 70)
    receive(queue, "+14155550007", "5000 offXtoday", T0 + 80)
    receive(queue, "+14155550008", "back\\slash", T0 + 90)

    def search(q: str) -> list[tuple[str, str, int]]:
        with read_tx(queue.engine) as tx:
            return [(t.sender, t.body, t.count) for t in threads_db.list_threads(tx, q=q).items]

    # the newest *matching* message stands for the thread
    assert search("stop") == [("+14155550002", "STOP", 1)]
    assert search("bo") == [("+14155550003", "BO AGAIN", 2)]
    assert search("%") == [("+14155550006", "50% off_today", 1)]
    assert search("f_t") == [("+14155550006", "50% off_today", 1)]
    assert search("\\") == [("+14155550008", "back\\slash", 1)]
    assert search("5550001") == [("+14155550001", "HELP", 3)]
    assert search("nobody") == []


@pytest.mark.parametrize("cursor", [
    "abc", "{}", "[1]", "[1e400, 2]", forged('["t", "x"]'), forged('["t", {}]'), forged('["t", [1]]'),
    forged('["t", [1e400, 2]]'), forged('["t", [1.5, 2]]'), forged('["t", [true, "x"]]'),
    forged('["t", [NaN, "x"]]'), forged('["t", [' + "9" * 400 + ', "x"]]'), forged('["t", [1, "x", 3]]'),
    forged('["m", [1, "x"]]'),
])
def test_a_forged_thread_cursor_is_invalid_request_naming_cursor(queue: Queue, cursor: str) -> None:
    with read_tx(queue.engine) as tx, pytest.raises(InvalidRequest, match="^cursor: "):
        threads_db.list_threads(tx, cursor=cursor)


def test_a_thread_cursor_with_an_integer_time_is_accepted(queue: Queue) -> None:
    three_senders(queue)
    with read_tx(queue.engine) as tx:
        page = threads_db.list_threads(tx, cursor=forged(json.dumps(["t", [int(T0) + 55, "+14155550009"]])))
    assert [t.sender for t in page.items] == ["+14155550002", "+14155550001"]


def test_conversation_merges_sent_and_received_oldest_first(queue: Queue) -> None:
    number = "+14155550001"
    [out] = queue.enqueue([number], "Trip tomorrow")  # created at T0
    receive(queue, number, "STOP", T0 + 5, keyword="stop")
    receive(queue, number, "earlier", T0 - 5)
    receive(queue, "+14155550002", "someone else", T0 + 1)
    with read_tx(queue.engine) as tx:
        items = threads_db.conversation(tx, number, limit=10)
        last_two = threads_db.conversation(tx, number, limit=2)
    assert [(e.direction, e.body, e.keyword, e.status, e.message_id) for e in items] == [
        ("in", "earlier", None, None, None),
        ("out", "Trip tomorrow", None, "queued", out.id),
        ("in", "STOP", "stop", None, None),
    ]
    assert [e.body for e in last_two] == ["Trip tomorrow", "STOP"]
    assert items[0].at.timestamp() == T0 - 5 and items[0].modem == "sim-a"


def test_like_pattern_escapes_wildcards() -> None:
    assert threads_db.like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"
