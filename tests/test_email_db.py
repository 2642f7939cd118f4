"""The email records on both engines: threads, first sight of a mail, refusals, and the
outbox leased to one node at a time, retried and kept until sent."""

from __future__ import annotations

from appliance.db import email as email_db
from appliance.db.engine import read_tx, write_tx
from appliance.queue import Queue


def test_threads_sights_and_refusals(db_url: str) -> None:
    queue = Queue(db_url)
    try:
        with write_tx(queue.engine) as tx:
            email_db.save_thread(tx, "+14155550100", "a@school.lan", "<1@x>", "Trip", 10.0)
            email_db.save_thread(tx, "+14155550100", "b@school.lan", "<2@x>", "Bus", 20.0)
            assert email_db.first_sight(tx, "email:<1@x>:group:g", 1.0)
            assert not email_db.first_sight(tx, "email:<1@x>:group:g", 2.0)
            email_db.forget_sight(tx, "email:<1@x>:group:g")
            assert email_db.first_sight(tx, "email:<1@x>:group:g", 3.0)
            for i in range(3):
                email_db.record_refusal(tx, at=float(i), peer="10.0.0.9", mail_from="eve@x", rcpt="a@example.com",
                                        code=550, reason=f"no {i}")
        with read_tx(queue.engine) as tx:
            thread = email_db.get_thread(tx, "+14155550100")
            assert thread is not None and (thread.sender, thread.message_id) == ("b@school.lan", "<2@x>")
            assert email_db.get_thread(tx, "+14155550199") is None
            assert [r.reason for r in email_db.list_refusals(tx, limit=2)] == ["no 2", "no 1"]
            assert email_db.count_refusals(tx) == 3
            assert email_db.inbound_after(tx, 0, limit=10) == []
            assert email_db.failed_after(tx, 0, limit=10) == (0, [])
            assert email_db.max_inbound_id(tx) == 0 and email_db.max_event_id(tx) == 0
    finally:
        queue.close()


def test_the_outbox_makes_each_mail_once_and_leases_it_to_one_node(db_url: str) -> None:
    queue = Queue(db_url)
    try:
        with write_tx(queue.engine) as tx:
            assert email_db.add_mail(tx, key="reply:1", mail_to="a@x", subject="Re", body="b", in_reply_to="<1@x>",
                                     now=100.0)
            assert not email_db.add_mail(tx, key="reply:1", mail_to="a@x", subject="Re", body="b", in_reply_to=None,
                                         now=101.0)
            assert email_db.add_mail(tx, key="reply:2", mail_to="a@x", subject="Re", body="c", in_reply_to=None,
                                     now=100.0)
        with write_tx(queue.engine) as tx:
            first = email_db.lease_due(tx, "n1", now=100.0, until=200.0, limit=10)
        with write_tx(queue.engine) as tx:
            assert email_db.lease_due(tx, "n2", now=150.0, until=250.0, limit=10) == []
        assert [m.key for m in first] == ["reply:1", "reply:2"] and first[0].in_reply_to == "<1@x>"
        with write_tx(queue.engine) as tx:
            email_db.mark_sent(tx, first[0].id, attempts=1, at=120.0)
            email_db.mark_failed(tx, first[1].id, attempts=1, next_attempt_at=130.0, error="refused", node="n1")
            assert email_db.next_due(tx) == 130.0
            assert email_db.count_outbox(tx) == (1, 1)
        with write_tx(queue.engine) as tx:  # after its backoff, the failed one goes to whoever asks
            again = email_db.lease_due(tx, "n2", now=131.0, until=300.0, limit=10)
            assert [(m.key, m.attempts, m.last_error) for m in again] == [("reply:2", 1, "refused")]
            assert email_db.release_node(tx, "n2", 140.0) == 1
            email_db.prune(tx, 1000.0)
            assert [m.key for m in email_db.list_outbox(tx)] == ["reply:2"]
    finally:
        queue.close()
