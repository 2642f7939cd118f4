"""The modem driver against every simulator persona: init, identity, send, receive, USSD."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appliance.modem.codes import cme_error, cms_error
from appliance.modem.driver import Modem, decode_ussd, signal_from_rssi
from appliance.modem.errors import SendRejected, SimPinError
from appliance.modem.simulator import SimulatedModem
from appliance.modem.types import InboundSms, StatusReportEvent
from appliance.pdu import encode_submit, gsm7_pack

PERSONAS = ("sim800", "huawei", "quectel")


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()
        self.fail = False

    def __call__(self, item: Any) -> None:
        if self.fail:
            raise RuntimeError("handler refuses")
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 2.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < count and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.items)


@pytest.fixture
def connect() -> Iterator[Callable[..., tuple[Modem, Inbox, Inbox]]]:
    made: list[Modem] = []

    def make(sim: SimulatedModem, *, init: bool = True, **kwargs: Any) -> tuple[Modem, Inbox, Inbox]:
        sms, reports = Inbox(), Inbox()
        kwargs.setdefault("command_timeout", 2.0)
        modem = Modem.open(sim.path, name=sim.name, on_sms=sms, on_status_report=reports,
                           resync_timeout=1.5, **kwargs)
        made.append(modem)
        if init:
            modem.initialize()
        return modem, sms, reports

    yield make
    for modem in made:
        modem.close()


@pytest.mark.parametrize("persona", PERSONAS)
def test_init_and_identity_on_every_persona(persona: str, sim_factory, connect) -> None:
    sim = sim_factory(persona, own_number="+15550001111")
    modem, _, _ = connect(sim)
    assert modem.cnmi == ((2, 1, 0, 1, 0) if persona == "huawei" else (2, 1, 0, 2, 0))
    ident = modem.identity()
    assert (ident.imei, ident.iccid, ident.imsi) == (sim.imei, sim.iccid, sim.imsi)
    assert ident.own_number == "+15550001111"
    assert ident.manufacturer and ident.model and ident.firmware
    assert "Revision" not in ident.firmware
    signal = modem.signal()
    assert (signal.rssi, signal.dbm, signal.bars) == (20, -73, 4)
    reg = modem.registration()
    assert reg.status == "home" and reg.registered
    assert reg.technology == {"sim800": None, "huawei": "UMTS", "quectel": "LTE"}[persona]
    assert modem.operator() == "SimNet"
    assert modem.smsc() == "+15550000000"
    assert [s.memory for s in modem.storage()] == ["SM", "SM", "SM"]
    assert modem.sms_ready()


def test_multipart_send_returns_each_mr(sim800: SimulatedModem, connect) -> None:
    modem, _, _ = connect(sim800)
    sim800.next_mr = 254
    parts = encode_submit("+15551234567", "x" * 400, concat_ref=0x42)
    mrs = [modem.send_pdu(p, timeout=2) for p in parts]
    assert mrs == [254, 255, 0]
    assert [(r.part, r.total, r.ref, r.mr) for r in sim800.sent] == [
        (1, 3, 0x42, 254), (2, 3, 0x42, 255), (3, 3, 0x42, 0)]
    assert "".join(r.text for r in sim800.sent) == "x" * 400


@pytest.mark.parametrize(("code", "temporary"), [(42, True), (331, True), (21, False), (1, False)])
def test_cms_errors_after_ctrl_z_are_definite_rejections(
    code: int, temporary: bool, sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    sim800.fail_sends(code)
    pdu = encode_submit("+15551234567", "refused")[0]
    with pytest.raises(SendRejected) as info:
        modem.send_pdu(pdu, timeout=2)
    err = info.value
    assert (err.kind, err.code, err.temporary) == ("cms", code, temporary)
    assert err.pdu_sent is True and err.definite is True
    assert modem.send_pdu(pdu, timeout=2) == 0  # the port is fine afterwards


def test_no_network_refuses_with_a_temporary_cause(sim800: SimulatedModem, connect) -> None:
    modem, _, _ = connect(sim800)
    sim800.set_network(False)
    with pytest.raises(SendRejected) as info:
        modem.send_pdu(encode_submit("+15551234567", "x")[0], timeout=2)
    assert info.value.code == 331 and info.value.temporary
    assert modem.registration().status == "searching"


def test_stored_messages_are_read_at_init_and_deleted(sim800: SimulatedModem, connect) -> None:
    sim800.deliver_sms("+15557654321", "while we were down")
    sim800.deliver_sms("+15557654322", "me too")
    assert len(sim800.storage) == 2
    modem, sms, _ = connect(sim800)
    got = sms.wait_for(2)
    assert sorted(m.message.text for m in got) == ["me too", "while we were down"]
    assert all(isinstance(m, InboundSms) and m.storage == "SM" for m in got)
    assert sim800.storage == []


def test_three_cmti_in_one_burst_all_handled_then_deleted(
    quectel: SimulatedModem, connect
) -> None:
    modem, sms, _ = connect(quectel)
    modem.command("AT+CNMI=0,1,0,2,0")  # indications are buffered by the modem...
    for i in range(3):
        quectel.deliver_sms("+1555000000" + str(i), f"burst {i}")
    modem.command("AT+CNMI=2,1,0,2,0")  # ...and flushed as one burst of three +CMTI
    got = sms.wait_for(3)
    assert sorted(m.message.text for m in got) == ["burst 0", "burst 1", "burst 2"]
    deadline = time.monotonic() + 2
    while quectel.storage and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quectel.storage == []
    assert sum(c.startswith("AT+CMGD=") for c in quectel.commands) == 3


def test_a_failing_handler_leaves_the_message_on_the_modem(
    sim800: SimulatedModem, connect
) -> None:
    modem, sms, _ = connect(sim800)
    sms.fail = True
    sim800.deliver_sms("+15557654321", "keep me")
    time.sleep(0.4)
    assert [m.kind for m in sim800.storage] == ["deliver"]
    sms.fail = False
    assert modem.process_stored() == 1
    assert sim800.storage == [] and sms.items[0].message.text == "keep me"


def test_directly_routed_cmt_is_handed_over(huawei: SimulatedModem, connect) -> None:
    modem, sms, _ = connect(huawei)
    huawei.deliver_sms("+15557654321", "routed", direct=True)
    got = sms.wait_for(1)
    assert got[0].message.text == "routed" and got[0].index is None


@pytest.mark.parametrize(("persona", "route"), [("sim800", "+CDSI"), ("huawei", "+CDS")])
def test_status_reports_reach_the_handler_with_the_mr(
    persona: str, route: str, sim_factory, connect
) -> None:
    sim = sim_factory(persona)
    modem, _, reports = connect(sim)
    sim.next_mr = 77
    mr = modem.send_pdu(encode_submit("+15551234567", "report me")[0], timeout=2)
    sim.send_status_report(mr, status=0)
    got = reports.wait_for(1)
    assert len(got) == 1 and isinstance(got[0], StatusReportEvent)
    report = got[0].report
    assert (report.reference, report.recipient, report.outcome) == (77, "+15551234567", "delivered")
    assert (got[0].index is None) == (route == "+CDS")
    time.sleep(0.1)
    assert sim.storage == []


@pytest.mark.parametrize("persona", PERSONAS)
def test_ussd_balance_on_every_persona(persona: str, sim_factory, connect) -> None:
    sim = sim_factory(persona)
    modem, _, _ = connect(sim)
    sim.set_ussd_reply("*100#", "Balance 3.20, bonus 1.00 (€)" if persona == "quectel"
                       else "Balance 3.20, bonus 1.00")
    reply = modem.ussd("*100#", timeout=2)
    assert reply.startswith("Balance 3.20, bonus 1.00")


def test_pin_missing_wrong_and_right(sim_factory, connect) -> None:
    sim = sim_factory("sim800", pin="1234")
    modem, _, _ = connect(sim, init=False)
    with pytest.raises(SimPinError, match="needs a PIN"):
        modem.initialize()
    modem.close()

    wrong, _, _ = connect(sim, init=False, pin="9999")
    with pytest.raises(SimPinError, match="refused"):
        wrong.initialize()
    with pytest.raises(SimPinError, match="not trying it again"):
        wrong.initialize()
    assert sum(c.upper().startswith("AT+CPIN=") for c in sim.commands) == 1
    wrong.close()

    right, _, _ = connect(sim, init=False, pin="1234")
    right.initialize()
    assert right.sim_state() == "READY"
    assert right.send_pdu(encode_submit("+15551234567", "unlocked")[0], timeout=2) == 0


def test_reset_reboots_and_reinitialises(sim800: SimulatedModem, connect) -> None:
    modem, sms, _ = connect(sim800)
    modem.reset(boot_timeout=3)
    assert modem.send_pdu(encode_submit("+15551234567", "after reset")[0], timeout=2) == 0
    sim800.deliver_sms("+15557654321", "after reset")  # CNMI was set again
    assert sms.wait_for(1)[0].message.text == "after reset"


def test_signal_bars_and_unknown() -> None:
    assert signal_from_rssi(99).dbm is None and signal_from_rssi(99).bars == 0
    assert [signal_from_rssi(r).bars for r in (0, 2, 10, 15, 20, 25, 31)] == [0, 1, 2, 3, 4, 5, 5]
    assert signal_from_rssi(31).dbm == -51 and signal_from_rssi(0).dbm == -113


def test_error_code_tables() -> None:
    assert cms_error(42).temporary and cms_error(331).temporary and cms_error(38).temporary
    assert not cms_error(1).temporary and not cms_error(21).temporary
    assert not cms_error(304).temporary
    assert cms_error(9999).temporary and "unknown" in cms_error(499).meaning
    assert cme_error(16).meaning == "incorrect password" and not cme_error(16).temporary


def test_decode_ussd_by_dcs() -> None:
    assert decode_ussd(gsm7_pack("Balance: 7.25 EUR").hex().upper(), 15) == "Balance: 7.25 EUR"
    assert decode_ussd("Ihr Guthaben".encode("utf-16-be").hex(), 72) == "Ihr Guthaben"
    assert decode_ussd("Your balance is 1.00", 15) == "Your balance is 1.00"
    assert decode_ussd("1234", 15) == "1234"
