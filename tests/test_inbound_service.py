"""InboundService: stored once, multipart reassembly, STOP/START/HELP with replies and the
consent log, crash safety; through the pty simulator where a modem is involved."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from appliance.config import KeywordLanguage, KeywordsSection, ModemConfig
from appliance.inbound import InboundService, KeywordTable
from appliance.modem import ManagedModem
from appliance.modem.simulator import SimulatedModem
from appliance.modem.types import InboundSms
from appliance.pdu import decode, encode_deliver
from appliance.queue import Queue
from appliance.db.engine import read_tx
from tests.utils.clock import FakeClock
from tests.utils.wait import wait_until

ALICE = "+15551230001"
BOB = "+15551230002"
TS = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LONG = "This is a long message that certainly needs more than one SMS part to arrive. " * 4


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def queue(db_url: str, clock: FakeClock) -> Iterator[Queue]:
    q = Queue(db_url, clock=clock)
    yield q
    q.close()


@pytest.fixture
def service(queue: Queue, clock: FakeClock) -> InboundService:
    return InboundService(queue, keywords=KeywordTable(), reassembly_timeout_s=600, clock=clock)


def sms(sender: str, text: str, *, modem: str = "m1", ref: int = 7, ts: datetime = TS) -> list[InboundSms]:
    """The SMS-DELIVER PDU(s) a modem would hand over for ``text`` from ``sender``."""
    return [InboundSms(modem, pdu, decode(pdu)) for pdu in encode_deliver(sender, text, timestamp=ts,
                                                                          concat_ref=ref)]


def inbound_rows(queue: Queue) -> list:
    return list(reversed(queue.list_inbound(limit=1000).items))


def fragments_left(queue: Queue) -> int:
    with read_tx(queue.engine) as conn:
        return conn.exec_driver_sql("SELECT COUNT(*) FROM inbound_fragments").scalar()


def replies_to(queue: Queue, number: str) -> list:
    return queue.list(to=number, limit=100).items


# ---------------------------------------------------------------------- stored once


def test_the_same_pdu_handled_twice_is_one_message(queue: Queue, service: InboundService) -> None:
    (event,) = sms(ALICE, "See you at 5")
    service.handle_sms(event)
    service.handle_sms(event)
    rows = inbound_rows(queue)
    assert len(rows) == 1
    assert (rows[0].sender, rows[0].body, rows[0].parts, rows[0].modem) == (ALICE, "See you at 5", 1, "m1")
    record = queue.get_inbound_record(rows[0].id)
    assert record.complete and record.keyword is None and record.handled_at is not None
    assert record.metadata is not None and record.metadata["encoding"] == "gsm7"


def test_identical_pdus_on_two_modems_are_two_messages(queue: Queue, service: InboundService) -> None:
    service.handle_sms(sms(ALICE, "Same words", modem="m1")[0])
    service.handle_sms(sms(ALICE, "Same words", modem="m2")[0])
    assert [r.modem for r in inbound_rows(queue)] == ["m1", "m2"]


def test_national_sender_is_stored_in_e164(queue: Queue, clock: FakeClock) -> None:
    service = InboundService(queue, clock=clock, default_region="US")
    service.handle_sms(sms("4155552671", "hi")[0])
    assert inbound_rows(queue)[0].sender == "+14155552671"


# ---------------------------------------------------------------------- multipart


def test_multipart_is_reassembled_into_one_row(queue: Queue, service: InboundService) -> None:
    parts = sms(ALICE, LONG)
    assert len(parts) == 3
    for event in parts:
        service.handle_sms(event)
    rows = inbound_rows(queue)
    assert len(rows) == 1
    assert (rows[0].body, rows[0].parts) == (LONG, 3)
    assert fragments_left(queue) == 0
    assert queue.get_inbound_record(rows[0].id).complete


def test_parts_out_of_order_and_repeated(queue: Queue, service: InboundService, clock: FakeClock) -> None:
    p1, p2, p3 = sms(ALICE, LONG)
    for event in (p3, p1, p3, p2):
        service.handle_sms(event)
    assert [(r.body, r.parts) for r in inbound_rows(queue)] == [(LONG, 3)]
    # A part read again after its message was assembled (crash before the modem's delete)
    # starts no new group: nothing is left to time out as a duplicate.
    service.handle_sms(p2)
    assert fragments_left(queue) == 0
    clock.now += 3600
    assert service.sweep() == 0
    assert len(inbound_rows(queue)) == 1


def test_two_messages_with_different_refs_do_not_mix(queue: Queue, service: InboundService) -> None:
    a = sms(ALICE, LONG, ref=1)
    b = sms(ALICE, LONG.upper(), ref=2)
    for event in (a[0], b[0], a[1], b[1], b[2], a[2]):
        service.handle_sms(event)
    assert sorted(r.body for r in inbound_rows(queue)) == sorted([LONG, LONG.upper()])


def test_reassembly_timeout_keeps_what_arrived(queue: Queue, service: InboundService, clock: FakeClock) -> None:
    p1, _p2, p3 = sms(ALICE, LONG)
    service.handle_sms(p1)
    clock.now += 100
    service.handle_sms(p3)
    assert inbound_rows(queue) == []
    clock.now += 499
    assert service.sweep() == 0  # the first part is 599 s old: still waiting
    clock.now += 2
    assert service.sweep() == 1
    (row,) = inbound_rows(queue)
    record = queue.get_inbound_record(row.id)
    assert record.body == p1.message.text + p3.message.text
    assert (record.complete, record.parts, record.metadata["missing"], record.metadata["total"]) == (False, 2, [2], 3)
    assert record.handled_at is not None
    assert fragments_left(queue) == 0


def test_incomplete_stop_is_not_a_keyword(queue: Queue, service: InboundService, clock: FakeClock) -> None:
    # Part 1 of a two-part message whose text is "STOP" + ...: cut short, it is no keyword.
    events = sms(ALICE, "STOP" + " " * 200 + "x")
    service.handle_sms(events[0])
    clock.now += 601
    service.sweep()
    assert queue.get_inbound_record(inbound_rows(queue)[0].id).keyword is None
    assert not queue.is_opted_out(ALICE)


# ---------------------------------------------------------------------- keywords


def test_stop_opts_out_logs_consent_replies_once_and_suppresses_queued(
    queue: Queue, service: InboundService
) -> None:
    queued = queue.enqueue([ALICE], "Your weekly offer")[0]
    (event,) = sms(ALICE, "Stop.")
    service.handle_sms(event)
    service.handle_sms(event)  # read twice: still one message, one confirmation

    (row,) = inbound_rows(queue)
    assert queue.get_inbound_record(row.id).keyword == "stop"
    assert queue.is_opted_out(ALICE)
    log = queue.consent_log(ALICE)
    assert [(action, source, note) for _at, action, source, note in log] == [("opt_out", f"sms:{row.id}", "Stop.")]
    assert queue.get(queued.id).status == "suppressed"

    replies = [m for m in replies_to(queue, ALICE) if m.id != queued.id]
    assert len(replies) == 1
    reply = queue.get(replies[0].id)
    assert reply.status == "queued" and reply.priority == "high" and reply.modem == "m1"
    assert reply.body.startswith("You are unsubscribed")
    # The confirmation passes the opt-out: the claim (and the check before its first part) let it go.
    claim = queue.claim("m1", max_parts=10)
    assert claim is not None and claim.message_id == reply.id and claim.ignore_opt_out
    assert queue.begin_part(claim, claim.parts[0], time.time()) == "go"


def test_repeated_stop_is_logged_but_not_confirmed_again(
    queue: Queue, service: InboundService, clock: FakeClock
) -> None:
    service.handle_sms(sms(ALICE, "STOP")[0])
    clock.now += 60
    service.handle_sms(sms(ALICE, "stop", ts=datetime(2026, 3, 1, 12, 1, tzinfo=UTC))[0])
    assert [a for _t, a, _s, _n in queue.consent_log(ALICE)] == ["opt_out", "opt_out"]
    assert len(replies_to(queue, ALICE)) == 1


def test_start_opts_back_in_and_replies(queue: Queue, service: InboundService, clock: FakeClock) -> None:
    service.handle_sms(sms(ALICE, "STOP")[0])
    clock.now += 60
    service.handle_sms(sms(ALICE, "start", ts=datetime(2026, 3, 1, 12, 5, tzinfo=UTC))[0])
    assert not queue.is_opted_out(ALICE)
    assert [a for _t, a, _s, _n in queue.consent_log(ALICE)] == ["opt_out", "opt_in"]
    replies = sorted(replies_to(queue, ALICE), key=lambda m: m.id)
    assert len(replies) == 2
    assert replies[1].body.startswith("You are subscribed again") and replies[1].status == "queued"
    assert queue.get_inbound_record(inbound_rows(queue)[1].id).keyword == "start"


def test_help_replies_without_changing_consent(queue: Queue, service: InboundService) -> None:
    service.handle_sms(sms(BOB, "help")[0])
    (reply,) = replies_to(queue, BOB)
    assert "Reply STOP" in reply.body and reply.status == "queued"
    assert queue.consent_log(BOB) == [] and not queue.is_opted_out(BOB)


def test_alphanumeric_sender_and_sentences_trigger_nothing(queue: Queue, service: InboundService) -> None:
    service.handle_sms(sms("BANK", "STOP")[0])
    service.handle_sms(sms(ALICE, "please stop texting me")[0])
    assert [queue.get_inbound_record(r.id).keyword for r in inbound_rows(queue)] == [None, None]
    assert not queue.is_opted_out(ALICE) and queue.list(limit=10).items == []


def test_other_language_keywords_from_settings(queue: Queue, clock: FakeClock) -> None:
    section = KeywordsSection(
        stop_reply="Unsubscribed. Reply START to come back.",
        languages=[KeywordLanguage(name="fr", stop=["Arrêt", "désabonner"], start=["Reprendre"],
                                   stop_reply="Vous êtes désabonné.", start_reply="Vous êtes réabonné.")],
    )
    service = InboundService(queue, keywords=KeywordTable.from_settings(section), clock=clock)
    service.handle_sms(sms(ALICE, "Arrêt!")[0])
    service.handle_sms(sms(BOB, "stop")[0])
    assert queue.is_opted_out(ALICE) and queue.is_opted_out(BOB)
    assert [m.body for m in replies_to(queue, ALICE)] == ["Vous êtes désabonné."]
    assert [m.body for m in replies_to(queue, BOB)] == ["Unsubscribed. Reply START to come back."]
    clock.now += 10
    service.handle_sms(sms(ALICE, "reprendre", ts=datetime(2026, 3, 2, tzinfo=UTC))[0])
    assert not queue.is_opted_out(ALICE)
    assert sorted(m.body for m in replies_to(queue, ALICE)) == ["Vous êtes désabonné.", "Vous êtes réabonné."]


def test_english_can_be_switched_off(queue: Queue, clock: FakeClock) -> None:
    table = KeywordTable.from_settings(KeywordsSection(
        english=False, languages=[KeywordLanguage(name="de", stop=["STOPP"])]))
    service = InboundService(queue, keywords=table, clock=clock)
    service.handle_sms(sms(ALICE, "STOP")[0])
    service.handle_sms(sms(BOB, "Stopp")[0])
    assert not queue.is_opted_out(ALICE) and queue.is_opted_out(BOB)


# ---------------------------------------------------------------------- crash safety


def test_unhandled_stop_is_acted_on_once_at_start(queue: Queue, clock: FakeClock) -> None:
    queued = queue.enqueue([ALICE], "Reminder")[0]
    # What a crash right after storing leaves behind: the row, no opt-out, no reply.
    record = queue.store_inbound("m1", ALICE, "STOP", digest="d1", keyword="stop", handled=False,
                                 metadata={"reply": True, "language": "en"})
    # And one crashed after its opt-out, before its reply.
    record2 = queue.store_inbound("m2", BOB, "STOP", digest="d2", keyword="stop", handled=False,
                                  metadata={"reply": True, "language": "en"})
    queue.opt_out(BOB, source=f"sms:{record2.id}", note="STOP")

    service = InboundService(queue, clock=clock, interval_s=0.05)
    service.start()
    try:
        assert queue.list_unhandled_inbound() == []
        assert queue.is_opted_out(ALICE) and queue.get(queued.id).status == "suppressed"
        assert [s for _t, _a, s, _n in queue.consent_log(ALICE)] == [f"sms:{record.id}"]
        assert len(queue.consent_log(BOB)) == 1  # not logged a second time by the re-run
        (alice_reply,) = [m for m in replies_to(queue, ALICE) if m.id != queued.id]
        (bob_reply,) = replies_to(queue, BOB)
        assert (queue.get(alice_reply.id).modem, queue.get(bob_reply.id).modem) == ("m1", "m2")
        assert service.retry_unhandled() == 0
    finally:
        service.stop()
    assert len(replies_to(queue, BOB)) == 1


def test_a_crash_inside_handle_sms_keeps_one_reply(queue: Queue, clock: FakeClock) -> None:
    class FlakyQueue(Queue):
        """The process 'dies' (raises) right after the opt-out, before the reply."""

        fail = True

        def enqueue(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.fail:
                self.fail = False
                raise OSError("power lost")
            return super().enqueue(*args, **kwargs)

    flaky = FlakyQueue(queue.engine, clock=clock, migrate_schema=False)
    service = InboundService(flaky, clock=clock)
    (event,) = sms(ALICE, "STOP")
    with pytest.raises(OSError):
        service.handle_sms(event)  # the modem keeps the PDU ...
    assert queue.is_opted_out(ALICE)  # ... but the opt-out is already stored
    service.handle_sms(event)  # ... and hands it over again
    assert len(inbound_rows(queue)) == 1 and len(replies_to(queue, ALICE)) == 1
    assert len(queue.consent_log(ALICE)) == 1


# ---------------------------------------------------------------------- through the simulator


def _managed(sim: SimulatedModem, service: InboundService, name: str = "sim-a") -> ManagedModem:
    modem = ManagedModem(ModemConfig(name=name, port=sim.path), on_sms=service.handle_sms,
                         on_status_report=service.handle_status_report, command_timeout=2.0)
    modem.start()
    assert modem.wait_online(10)
    return modem


def test_simulator_multipart_and_a_double_read(sim_factory: Callable[..., SimulatedModem], db_url: str) -> None:
    queue = Queue(db_url)
    service = InboundService(queue)
    sim = sim_factory("sim800")
    modem = _managed(sim, service)
    try:
        sim.deliver_sms(ALICE, LONG)
        wait_until(lambda: len(inbound_rows(queue)) == 1, what='len(inbound_rows(queue)) == 1')
        (row,) = inbound_rows(queue)
        assert (row.body, row.parts, row.sender, row.modem) == (LONG, 3, ALICE, "sim-a")
        wait_until(lambda: not sim.storage, what='not sim.storage')  # each part deleted once stored
    finally:
        modem.stop()

    # A crash after our commit but before the modem's delete: the handler stores the STOP,
    # then "dies"; the PDU stays on the SIM and is read again when the modem is next set up.
    crashed: list[str] = []

    def crash_once(event: InboundSms) -> None:
        service.handle_sms(event)
        if not crashed:
            crashed.append(event.pdu_hex)
            raise RuntimeError("crash before the delete")

    modem = ManagedModem(ModemConfig(name="sim-a", port=sim.path), on_sms=crash_once, command_timeout=2.0)
    modem.start()
    try:
        assert modem.wait_online(10)
        sim.deliver_sms(BOB, "STOP")
        wait_until(lambda: len(inbound_rows(queue)) == 2 and crashed, what='len(inbound_rows(queue)) == 2 and crashed')
        assert len(sim.storage) == 1
    finally:
        modem.stop()
    modem = _managed(sim, service)  # initialise reads the stored PDU again
    try:
        wait_until(lambda: not sim.storage, what='not sim.storage')
        assert len(inbound_rows(queue)) == 2
        assert queue.is_opted_out(BOB) and len(replies_to(queue, BOB)) == 1
    finally:
        modem.stop()
        queue.close()


def test_simulator_status_report_delivers_the_message(
    sim_factory: Callable[..., SimulatedModem], db_url: str
) -> None:
    queue = Queue(db_url)
    service = InboundService(queue)
    sim = sim_factory("sim800")
    modem = _managed(sim, service)
    try:
        msg = queue.enqueue([ALICE], "Your code is 1234")[0]
        claim = queue.claim("sim-a", max_parts=10)
        assert claim is not None
        part = claim.parts[0]
        assert queue.begin_part(claim, part, time.time()) == "go"
        queue.part_sent(claim, part, 42, time.time())
        sim.send_status_report(42, status=0, recipient=ALICE)
        wait_until(lambda: queue.get(msg.id).status == "delivered", what='queue.get(msg.id).status == "delivered"')
    finally:
        modem.stop()
        queue.close()
