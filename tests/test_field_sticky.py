"""Issue 15: the sticky sender. A number gets its messages from the SIM that last texted
it or that it last wrote to while that SIM holds (online, within its caps, for at most
``sticky_wait_s``); otherwise round-robin. End to end on pty-simulated modems, both engines;
the claim rules on the queue itself; the preview's estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.broadcasts.estimate import parts_within, send_duration, sticky_duration
from appliance.config import ConfigError, load_settings
from appliance.db.sticky import Sticky
from appliance.modem.simulator import SimulatedModem
from appliance.queue import Claim, Queue, RateLimits
from tests.utils.wait import wait_until

X, Z = "+14155550170", "+14155550171"
FREE = dict(min_interval_s=0, max_parts_per_minute=10_000, max_parts_per_hour=10_000, max_parts_per_day=10_000)


# ---------------------------------------------------------------------- pure parts


def test_estimate_counts_the_parts_waiting_for_one_sim() -> None:
    lim = RateLimits(min_interval_s=2, per_minute=6, per_hour=200, per_day=1000)
    three = [lim] * 3
    even = send_duration(500, three)
    assert sticky_duration(500, three, [0, 0, 0], 600) == even
    assert sticky_duration(500, three, [100, 100, 100], 600) == even  # spread: no slower
    # all 500 know the second SIM: it sends what it can in 10 min, then everyone shares the rest
    assert parts_within(600, lim, most=500) == 66
    one_sim = sticky_duration(500, three, [0, 500, 0], 600)
    assert one_sim == 600 + send_duration(434, three) > even
    # waiting without a limit: the SIM's own rate (its hour cap)
    assert sticky_duration(500, three, [0, 500, 0], 10**9) == 2 * 3600


@pytest.mark.parametrize("bad", ["sticky_wait_s = -1", 'sticky_sender = "perhaps"'])
def test_bad_sticky_settings_name_the_key(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(f"[sms]\n{bad}\n")
    with pytest.raises(ConfigError, match=bad.split(" ")[0]):
        load_settings(path)


def test_sticky_sender_is_on_by_default(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text("")
    sms = load_settings(path).sms
    assert sms.sticky_sender is True and sms.sticky_wait_s == 600


# ---------------------------------------------------------------------- the claim's rules


def _send(q: Queue, to: str, modem: str, sim: str, now: float) -> None:
    """One message to ``to`` sent through ``modem`` (SIM ``sim``) as a worker does it."""
    q.enqueue([to], "hello", modem=modem)
    claim = q.claim(modem, max_parts=10, now=now, sim=sim)
    assert claim is not None and claim.to == to
    assert q.begin_part(claim, claim.parts[0], now) == "go"
    q.part_sent(claim, claim.parts[0], 1, now)


def _claimed(q: Queue, modem: str, **kwargs: Any) -> Claim:
    """``q.claim`` (ten parts at most) that must claim a message."""
    got = q.claim(modem, max_parts=10, **kwargs)
    assert got is not None
    return got


def test_claim_leaves_sticky_work_to_its_sim_while_it_holds(db_url: str) -> None:
    clock = [1_000_000.0]
    q = Queue(db_url, clock=lambda: clock[0])
    try:
        _send(q, X, "b", "SIM-B", clock[0])
        q.record_inbound("c", Z, "hi")  # C's modem has not told its ICCID: its name is the key
        assert q.known_sims([X, Z, "+14155550199"]) == {X: "SIM-B", Z: "c"}
        clock[0] += 10
        free = q.enqueue(["+14155550180"], "older free work")[0].id
        clock[0] += 1
        sticky = q.enqueue([X], "for b")[0].id
        now = clock[0]
        for_a = Sticky(own="SIM-A", holding=("SIM-B", "c"), released_before=now - 600, wait_s=600)
        # A takes the free message, leaves X's to B and wakes when it is released
        got = _claimed(q, "a", now=now, sim="SIM-A", sticky=for_a)
        assert got.message_id == free
        q.release(got, "test")
        q.claim("a", max_parts=10, now=now, sim="SIM-A", sticky=for_a)  # takes the free one again
        assert q.claim("a", max_parts=10, now=now, sim="SIM-A", sticky=for_a) is None
        assert q.next_wakeup("a", now=now, sticky=for_a) == pytest.approx(now + 600)
        # B does not hold (offline, at a cap): anyone takes it
        loose = Sticky(own="SIM-A", holding=("c",), released_before=now - 600, wait_s=600)
        got = _claimed(q, "a", now=now, sim="SIM-A", sticky=loose)
        assert got.message_id == sticky
        q.release(got, "test")
        # it waited long enough: anyone takes it
        late = Sticky(own="SIM-A", holding=("SIM-B",), released_before=now, wait_s=0)
        got = _claimed(q, "a", now=now, sim="SIM-A", sticky=late)
        assert got.message_id == sticky
        q.release(got, "test")
        # sticky sender off: the plain claim takes it
        got = _claimed(q, "a", now=now, sim="SIM-A")
        assert got.message_id == sticky
    finally:
        q.close()


def test_a_sim_serves_its_own_people_first_but_urgent_work_still_first(db_url: str) -> None:
    clock = [2_000_000.0]
    q = Queue(db_url, clock=lambda: clock[0])
    try:
        _send(q, X, "b", "SIM-B", clock[0])
        clock[0] += 1
        older = q.enqueue(["+14155550181"], "free, older")[0].id
        mine = q.enqueue([X], "for b", priority="low")[0].id
        urgent = q.enqueue(["+14155550182"], "free, urgent", priority="high")[0].id
        for_b = Sticky(own="SIM-B", holding=(), released_before=clock[0] - 600, wait_s=600)
        order = []
        for _ in range(3):
            got = _claimed(q, "b", now=clock[0], sim="SIM-B", sticky=for_b)
            order.append(got.message_id)
        assert order == [urgent, older, mine]  # low priority: its own comes after normal work
        clock[0] += 1
        normal = q.enqueue([X], "for b, normal")[0].id
        other = q.enqueue(["+14155550183"], "free, normal")[0].id
        got = _claimed(q, "b", now=clock[0], sim="SIM-B", sticky=for_b)
        assert got.message_id == normal  # same priority: its own first
        got = _claimed(q, "b", now=clock[0], sim="SIM-B", sticky=for_b)
        assert got.message_id == other
    finally:
        q.close()


def test_a_message_pinned_to_a_modem_is_its_own_whatever_the_person_knows(db_url: str) -> None:
    clock = [4_000_000.0]
    q = Queue(db_url, clock=lambda: clock[0])
    try:
        _send(q, X, "b", "SIM-B", clock[0])
        clock[0] += 1
        now = clock[0]
        for_a = Sticky(own="SIM-A", holding=("SIM-B",), released_before=now - 600, wait_s=600)
        asked = q.enqueue([X], "from a, as asked", modem="a")[0].id  # e.g. Twilio's From
        got = _claimed(q, "a", now=now, sim="SIM-A", sticky=for_a)
        assert got.message_id == asked
        # X's multipart message, released to A (B was at a cap), pinned to A once a part left
        later = q.enqueue([X], "part " * 100)[0].id
        got = _claimed(q, "a", now=now, sim="SIM-A",
                       sticky=Sticky(own="SIM-A", released_before=now - 600, wait_s=600))
        assert got.message_id == later
        assert q.begin_part(got, got.parts[0], now) == "go"
        q.part_sent(got, got.parts[0], 7, now)
        q.release(got, "test")
        # B holds again, but the rest of the message can only go through A: A takes it
        got = _claimed(q, "a", now=now, sim="SIM-A", sticky=for_a)
        assert got.message_id == later and got.parts[0].seq == 2
        assert q.claim("b", max_parts=10, now=now, sim="SIM-B",
                       sticky=Sticky(own="SIM-B", holding=("SIM-A",), released_before=now - 600, wait_s=600)) is None
    finally:
        q.close()


def test_a_refusal_by_the_known_sim_frees_the_retry_for_any_sim(db_url: str) -> None:
    """The SIM a person knows refused their message (a temporary error): the retry may go
    through another SIM instead of spending every attempt on that one."""
    clock = [5_000_000.0]
    q = Queue(db_url, clock=lambda: clock[0])
    try:
        _send(q, X, "b", "SIM-B", clock[0])
        clock[0] += 1
        mid = q.enqueue([X], "for b")[0].id
        now = clock[0]
        for_a = Sticky(own="SIM-A", holding=("SIM-B",), released_before=now - 600, wait_s=600)
        for_b = Sticky(own="SIM-B", holding=("SIM-A",), released_before=now - 600, wait_s=600)
        assert q.claim("a", max_parts=10, now=now, sim="SIM-A", sticky=for_a) is None
        got = q.claim("b", max_parts=10, now=now, sim="SIM-B", sticky=for_b)
        assert got is not None and got.message_id == mid
        assert q.begin_part(got, got.parts[0], now) == "go"
        assert q.part_retry(got, got.parts[0], "+CMS ERROR 42", forget_send=True) == "queued"
        later = now + 120  # past the retry's backoff, well within sticky_wait_s; B still holds
        got = q.claim("a", max_parts=10, now=later, sim="SIM-A",
                      sticky=Sticky(own="SIM-A", holding=("SIM-B",), released_before=later - 600, wait_s=600))
        assert got is not None and got.message_id == mid
    finally:
        q.close()


def test_sticky_off_marks_nothing(db_url: str) -> None:
    q = Queue(db_url, sticky_sender=False, clock=lambda: 3_000_000.0)
    try:
        _send(q, X, "b", "SIM-B", q.clock())
        assert q.known_sims([X]) == {X: "SIM-B"}  # known, but not marked
        mid = q.enqueue([X], "again")[0].id
        for_a = Sticky(own="SIM-A", holding=("SIM-B",), released_before=0.0, wait_s=600)
        got = _claimed(q, "a", sim="SIM-A", sticky=for_a)  # not marked: anyone's
        assert got.message_id == mid
    finally:
        q.close()


def test_other_nodes_online_sims_are_read_from_their_modem_rows(db_url: str) -> None:
    from appliance.db import nodes, write_tx

    q = Queue(db_url)
    try:
        with write_tx(q.engine) as tx:
            for name in ("n1", "n2"):
                nodes.register(tx, name, host="h", pid=1, version="t", api_url=None, lease_s=30)
        q.upsert_modem("n1-a", iccid="ICC-A", state="online", node="n1")
        q.upsert_modem("n2-b", iccid="ICC-B", state="online", node="n2")
        q.upsert_modem("n2-c", state="online", node="n2")  # no ICCID yet: its name
        q.upsert_modem("n2-d", iccid="ICC-D", state="offline", node="n2")
        assert q.online_sims(besides="n1") == {"ICC-B", "n2-c"}
        with write_tx(q.engine) as tx:
            nodes.stop(tx, "n2")
        assert q.online_sims(besides="n1") == set()  # a stopped node holds no one
    finally:
        q.close()


# ---------------------------------------------------------------------- end to end


def _simulators(tmp_path: Path, latency_s: float = 0.0) -> list[SimulatedModem]:
    sims = [SimulatedModem(p, link_dir=tmp_path / "serial", latency_s=latency_s) for p in ("sim800", "huawei", "quectel")]
    for s in sims:
        s.start()
    return sims


def _serve(factory: Any, db_url: str, sims: list[SimulatedModem], tmp_path: Path, *,
           caps: dict[str, dict[str, Any]] | None = None, sms: dict[str, Any] | None = None) -> Any:
    modems = [{"name": n, "imei": s.imei, **FREE, **(caps or {}).get(n, {})} for n, s in zip("abc", sims, strict=True)]
    server = factory(simulate=0, settings={
        "appliance": {"database_url": db_url}, "modems": modems, "sms": sms or {},
        "discovery": {"patterns": [str(tmp_path / "serial" / "ttyUSB*")]},
    })
    workers = server.app.dispatcher.workers
    assert wait_until(lambda: all(w.sim != w.name for w in workers), what="the workers know their SIMs' ICCIDs")
    return server


def _sent_by(c: Any, mid: int) -> str:
    msg = wait_until(lambda: (m := c.get(f"/v1/messages/{mid}").json())["status"] == "sent" and m,
                     what=f"message {mid} sent")
    return str(msg["modem"])


def _post(c: Any, to: str, body: str = "hello") -> int:
    r = c.post("/v1/messages", json={"to": to, "body": body})
    assert r.status_code == 202, r.text
    return int(r.json()["messages"][0]["id"])


def _texted_by_b(server: Any, c: Any) -> None:
    first = server.app.queue.enqueue([X], "from b", modem="b")[0].id  # the line X knows
    assert _sent_by(c, first) == "b"


def test_replies_come_from_the_line_the_person_knows_until_it_is_at_its_cap(
        tmp_path: Path, db_url: str, live_server_factory: Any) -> None:
    sims = _simulators(tmp_path)
    try:
        server = _serve(live_server_factory, db_url, sims, tmp_path, caps={"b": {"max_parts_per_day": 3}})
        with server.client() as c:
            _texted_by_b(server, c)
            d = server.app.dispatcher
            b = next(w for w in d.workers if w.name == "b")
            for i in range(2):  # a fresh number between them moves the round-robin on
                # b holds (online, between sends): on a loaded machine a slow answer can
                # take it offline for a moment, and then X's message rightly goes elsewhere.
                wait_until(lambda: d.holds(b, d.clock()), what="b holds its people's work")
                mid = _post(c, X, f"again {i}")
                assert _sent_by(c, mid) == "b", server.app.queue.events(mid)
                _sent_by(c, _post(c, f"+1415555019{i}"))
            # b sent 3 parts today: at its day cap, so X's next message goes round-robin
            assert wait_until(lambda: server.app.dispatcher.budgets()["b"].day_left == 0)
            assert _sent_by(c, _post(c, X, "b is full")) in {"a", "c"}
            # Z wrote to c: the answer comes from c
            sims[2].deliver_sms(Z, "Is the school open tomorrow?")
            wait_until(lambda: c.get("/v1/inbound", params={"sender": Z}).json()["items"], what="inbound stored")
            assert server.app.queue.known_sims([Z]) == {Z: sims[2].iccid}
            for i in range(2):
                assert _sent_by(c, _post(c, Z, f"Yes {i}")) == "c"
    finally:
        for s in sims:
            s.stop()


@pytest.mark.slow
def test_sticky_off_sends_round_robin(tmp_path: Path, db_url: str, live_server_factory: Any) -> None:
    sims = _simulators(tmp_path)
    try:
        server = _serve(live_server_factory, db_url, sims, tmp_path, sms={"sticky_sender": False})
        with server.client() as c:
            _texted_by_b(server, c)
            used = [_sent_by(c, _post(c, X, f"m{i}")) for i in range(3)]
            assert len(set(used)) > 1, used  # each idle modem in turn, not b each time
    finally:
        for s in sims:
            s.stop()


def test_distinct_numbers_spread_over_every_modem_and_an_offline_sim_holds_no_one(
        tmp_path: Path, db_url: str, live_server_factory: Any) -> None:
    sims = _simulators(tmp_path, latency_s=0.02)
    try:
        server = _serve(live_server_factory, db_url, sims, tmp_path)
        queue = server.app.queue
        with server.client() as c:
            _texted_by_b(server, c)
            fresh = [f"+1415555{i:04d}" for i in range(1000, 1030)]
            ids = [m.id for m in queue.enqueue(fresh + [X] * 4, "backlog")]
            wait_until(lambda: queue.stats()["sent"] == 1 + len(ids), what="the backlog sent")
            by = {i: queue.get(i).modem for i in ids}
            assert {by[i] for i in ids[-4:]} == {"b"}  # X's four: all from b
            counts = {name: sum(1 for i in ids[:30] if by[i] == name) for name in "abc"}
            assert all(n > 0 for n in counts.values()), counts  # the fresh numbers: every modem
            # b unplugged: X's next message does not wait for it
            sims[1].unplug()
            b = next(m for m in server.app.modems if m.name == "b")
            wait_until(lambda: not b.online, what="b offline")
            assert _sent_by(c, _post(c, X, "b is unplugged")) in {"a", "c"}
    finally:
        for s in sims:
            s.stop()


@pytest.mark.slow
def test_preview_estimate_counts_people_waiting_for_one_sim(tmp_path: Path, db_url: str,
                                                             live_server_factory: Any) -> None:
    sims = _simulators(tmp_path)
    try:
        capped = dict(min_interval_s=0, max_parts_per_minute=6)
        server = _serve(live_server_factory, db_url, sims, tmp_path,
                        caps={"a": capped, "b": capped, "c": capped})
        known = [f"+1415555{i:04d}" for i in range(2000, 2060)]
        fresh = [f"+1415555{i:04d}" for i in range(3000, 3060)]
        for number in known:  # they all wrote to b
            server.app.queue.record_inbound("b", number, "hi")
        with server.client() as c:
            def preview(numbers: list[str]) -> dict[str, Any]:
                r = c.post("/v1/broadcasts/preview", json={"template": "Closed tomorrow",
                                                            "audience": {"numbers": numbers}})
                assert r.status_code == 200, r.text
                return dict(r.json())

            spread, one_sim = preview(fresh), preview(known)
        assert spread["sticky"] == 0 and one_sim["sticky"] == 60
        # 60 parts at 6 a minute: 20 per modem (3 min) vs all 60 through b (9 min)
        assert spread["estimate_s"] == 180 and one_sim["estimate_s"] == 540
        assert "60 recipients waiting for the SIM they know" in one_sim["estimate"]
    finally:
        for s in sims:
            s.stop()
