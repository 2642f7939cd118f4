"""STOP honoured even for already-queued messages, end to end on a live daemon.

200 messages are queued to one number; while the simulated modems drain them, that number
texts STOP. No message may leave after the opt-out is stored, the rest are ``suppressed``,
and exactly one confirmation goes back, through the modem the STOP came in on.
"""

from __future__ import annotations

import time

from appliance.db.engine import read_tx
from tests.utils.wait import wait_until

NUMBER = "+14155550111"


def test_stop_race_on_queued_messages(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    live = live_server_factory(simulate=2, simulator_kwargs={"latency_s": 0.02})
    queue = live.app.queue
    with live.client() as http:
        r = http.post("/v1/messages", json={"to": [NUMBER] * 200, "body": "Reminder: school trip tomorrow"})
        assert r.status_code == 202, r.text
        ids = [m["id"] for m in r.json()["messages"]]
    assert len(ids) == 200

    wait_until(lambda: sum(len(s.sent) for s in live.simulators) >= 10,
               what='sum(len(s.sent) for s in live.simulators) >= 10')
    receiving = live.simulators[1]
    receiving.deliver_sms(NUMBER, "Stop")
    wait_until(lambda: queue.is_opted_out(NUMBER), what='queue.is_opted_out(NUMBER)')
    with read_tx(queue.engine) as tx:
        opted_at = tx.exec_driver_sql("SELECT created_at FROM opt_outs WHERE number = ?", (NUMBER,)).scalar()

    def settled() -> bool:
        states = {queue.get(i).status for i in ids}
        return states <= {"sent", "suppressed"}

    wait_until(settled, what='settled')
    statuses = [queue.get(i).status for i in ids]
    sent_ids = [i for i, s in zip(ids, statuses) if s == "sent"]
    assert 10 <= len(sent_ids) < 200
    assert statuses.count("suppressed") == 200 - len(sent_ids)

    # Every message that left had its part committed "submitting" before the opt-out.
    with read_tx(queue.engine) as tx:
        latest = tx.exec_driver_sql(
            f"SELECT MAX(submitted_at) FROM parts WHERE message_id IN ({','.join('?' * len(sent_ids))})",
            tuple(sent_ids),
        ).scalar()
    assert latest < opted_at

    # The modems saw exactly the sent messages, plus one confirmation.
    wait_until(lambda: len([r for s in live.simulators for r in s.sent
                          if r.to == NUMBER and r.text != "Reminder: school trip tomorrow"]) == 1,
               what='len([r for s in live.simulators for r in s.sent…')
    to_number = [rec for sim in live.simulators for rec in sim.sent if rec.to == NUMBER]
    replies = [rec for rec in to_number if rec.text != "Reminder: school trip tomorrow"]
    assert len(to_number) - len(replies) == len(sent_ids)
    assert len(replies) == 1
    assert "unsubscribed" in replies[0].text.lower()
    assert replies[0].modem == receiving.name

    # A new message to the number is refused as suppressed at once.
    with live.client() as http:
        r = http.post("/v1/messages", json={"to": NUMBER, "body": "one more"})
        assert r.status_code == 202, r.text
        assert r.json()["messages"][0]["status"] == "suppressed"
    time.sleep(0.3)
    assert len([r for s in live.simulators for r in s.sent if r.to == NUMBER]) == len(to_number)
