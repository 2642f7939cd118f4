"""The AT transport against the pty simulator: classification, resync, disconnects, ports."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from appliance.modem.errors import (
    ModemDisconnected,
    ModemTimeout,
    PortBusy,
    PortPermissionDenied,
    SendOutcomeUnknown,
)
from appliance.modem.simulator import SimulatedModem
from appliance.modem.transport import ATTransport, Urc
from appliance.pdu import encode_submit


class UrcLog:
    def __init__(self) -> None:
        self.items: list[Urc] = []
        self.cond = threading.Condition()

    def __call__(self, urc: Urc) -> None:
        with self.cond:
            self.items.append(urc)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 2.0, name: str | None = None) -> list[Urc]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [u for u in self.items if name is None or u.name == name]
                if len(got) >= count or time.monotonic() > deadline:
                    return got
                self.cond.wait(0.05)


@pytest.fixture
def open_transport() -> Iterator[Callable[..., tuple[ATTransport, UrcLog]]]:
    made: list[ATTransport] = []

    def make(sim: SimulatedModem, **kwargs: object) -> tuple[ATTransport, UrcLog]:
        log = UrcLog()
        kwargs.setdefault("resync_timeout", 1.5)
        t = ATTransport(sim.path, name=sim.name, on_urc=log, **kwargs)  # type: ignore[arg-type]
        t.open()
        made.append(t)
        return t, log

    yield make
    for t in made:
        t.close()


def test_answers_with_echo_on_then_off(sim800: SimulatedModem, open_transport) -> None:
    t, _ = open_transport(sim800)
    assert t.command("AT+CGMI", timeout=1) == ["SIMCOM_Ltd"]  # echo is still on: dropped
    t.command("ATE0", timeout=1)
    assert t.command("AT+CGSN", timeout=1) == [sim800.imei]


def test_error_codes_are_typed(sim800: SimulatedModem, open_transport) -> None:
    t, _ = open_transport(sim800)
    t.command("ATE0;+CMEE=1", timeout=1)
    response = t.execute("AT+CMGR=999", timeout=1)
    assert response.final == "+CMS ERROR: 321"
    err = response.error("m1")
    assert (err.kind, err.code, err.temporary) == ("cms", 321, False)
    assert "invalid memory index" in str(err)


def test_urc_in_the_middle_of_a_command_is_handled_and_answer_kept(
    sim_factory: Callable[..., SimulatedModem], open_transport
) -> None:
    sim = sim_factory("sim800", latency_s=0.4)
    t, urcs = open_transport(sim)
    t.command("ATE0", timeout=1)
    pdu = encode_submit("+15551234567", "mid-command URC")[0]
    timer = threading.Timer(0.15, sim.inject_garbage,
                            args=(b'\r\n+CMTI: "SM",7\r\n\r\n+CSQ: 31,0\r\n',))
    timer.start()
    response = t.send_prompted(f"AT+CMGS={pdu.tpdu_length}", pdu.hex, timeout=2)
    timer.join()
    assert response.ok and response.payload_sent
    assert response.first("+CMGS") == "0"
    got = urcs.wait_for(1, name="+CMTI")
    assert [u.args for u in got] == ['"SM",7']
    # +CSQ is never a URC: while a send is pending it is part of the send's answer
    assert "+CSQ: 31,0" in response.lines


def test_burst_of_urcs_two_line_urcs_and_registration_lines(
    sim800: SimulatedModem, open_transport
) -> None:
    t, urcs = open_transport(sim800)
    t.command("ATE0", timeout=1)
    sim800.inject_garbage(
        b'\r\n+CMTI: "SM",1\r\n\r\n+CMTI: "SM",2\r\n\r\n+CDS: 25\r\n'
        b"0791538375000075061805810531F1019082416500400190824165004000\r\n"
        b"\r\nRING\r\n\r\n+CREG: 5\r\n\r\n+CMTI: \"ME\",3\r\n"
    )
    got = urcs.wait_for(6)
    assert [u.name for u in got] == ["+CMTI", "+CMTI", "+CDS", "RING", "+CREG", "+CMTI"]
    assert got[2].body == "0791538375000075061805810531F1019082416500400190824165004000"
    # "+CREG: 0,1" answers a pending AT+CREG?; it is not a URC then
    assert t.command("AT+CREG?", timeout=1) == ["+CREG: 0,1"]
    assert len(urcs.items) == 6


def test_garbage_does_not_kill_the_reader(sim800: SimulatedModem, open_transport) -> None:
    t, urcs = open_transport(sim800)
    t.command("ATE0", timeout=1)
    sim800.inject_garbage(b"\xff\xfe\x00\x80garbage\r\n\xc3\x28\x9f" * 20)
    sim800.inject_garbage(b"\x00\xff\r\n+CMTI: \"SM\",4\r\n")
    assert t.command("AT+CGMM", timeout=1) == ["SIMCOM_SIM800L"]
    assert [u.args for u in urcs.wait_for(1, name="+CMTI")] == ['"SM",4']
    assert t.is_open


def test_after_a_timeout_the_next_command_gets_its_own_answer(
    sim800: SimulatedModem, open_transport
) -> None:
    t, _ = open_transport(sim800)
    t.command("ATE0", timeout=1)
    sim800.hang(0.7)
    start = time.monotonic()
    with pytest.raises(ModemTimeout):
        t.command("AT+CSQ", timeout=0.3)
    assert time.monotonic() - start < 2.5
    assert t.command("AT+CGSN", timeout=1) == [sim800.imei]
    # a stale answer arriving between commands is dropped, not taken by the next one
    sim800.inject_garbage(b"\r\n+CSQ: 5,5\r\n\r\nOK\r\n")
    time.sleep(0.1)
    assert t.command("AT+CGMI", timeout=1) == ["SIMCOM_Ltd"]


def test_prompt_timeout_raises_before_anything_was_sent(
    sim800: SimulatedModem, open_transport
) -> None:
    t, _ = open_transport(sim800)
    t.command("ATE0", timeout=1)
    pdu = encode_submit("+15551234567", "never sent")[0]
    sim800.hang(0.5)
    with pytest.raises(ModemTimeout) as info:
        t.send_prompted(f"AT+CMGS={pdu.tpdu_length}", pdu.hex, prompt_timeout=0.3, timeout=1)
    assert info.value.pdu_sent is False
    assert sim800.sent == []
    assert t.command("AT+CGSN", timeout=1) == [sim800.imei]


def test_unplug_during_a_send_fails_it_at_once(
    sim_factory: Callable[..., SimulatedModem], open_transport
) -> None:
    sim = sim_factory("sim800", latency_s=5.0)
    disconnected: list[ModemDisconnected] = []
    t, _ = open_transport(sim, on_disconnect=disconnected.append)
    t.command("ATE0", timeout=1)
    pdu = encode_submit("+15551234567", "unplugged")[0]
    threading.Timer(0.2, sim.unplug).start()
    start = time.monotonic()
    with pytest.raises(SendOutcomeUnknown) as info:
        t.send_prompted(f"AT+CMGS={pdu.tpdu_length}", pdu.hex, timeout=10)
    assert time.monotonic() - start < 2.0
    assert info.value.pdu_sent is True and info.value.definite is False
    assert disconnected and not t.is_open
    with pytest.raises(ModemDisconnected):
        t.command("AT", timeout=1)


def test_unplug_during_a_command_raises_disconnected(
    sim800: SimulatedModem, open_transport
) -> None:
    t, _ = open_transport(sim800)
    sim800.hang(5)
    threading.Timer(0.2, sim800.unplug).start()
    start = time.monotonic()
    with pytest.raises(ModemDisconnected):
        t.command("AT+CSQ", timeout=4)
    assert time.monotonic() - start < 2.0


def test_port_errors_name_the_problem(sim800: SimulatedModem, tmp_path, open_transport) -> None:
    with pytest.raises(ModemDisconnected, match="not found"):
        ATTransport(str(tmp_path / "ttyUSB99")).open()
    t, _ = open_transport(sim800)
    with pytest.raises(PortBusy, match="busy"):
        ATTransport(sim800.path).open()
    assert t.command("AT", timeout=1) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may open anything")
def test_permission_denied_names_the_dialout_group(sim800: SimulatedModem) -> None:
    device = os.path.realpath(sim800.path)
    mode = os.stat(device).st_mode
    os.chmod(device, 0)
    try:
        with pytest.raises(PortPermissionDenied, match="dialout"):
            ATTransport(sim800.path).open()
    finally:
        os.chmod(device, mode)
