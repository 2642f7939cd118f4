"""The pty modem simulator, driven over its real pseudo-terminals with plain pyserial."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from appliance.modem.simulator import PERSONAS, SimulatedModem, SimulatorError, SimulatorPool
from appliance.pdu import decode, encode_submit, gsm7_unpack

VECTOR_1 = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"  # +46708251358 "hellohello", 23
VECTOR_4 = "005100098156355476F80000AA14050003880303C2A066D8CD02B5F3A0F9DB0D"  # part 3/3 ref 0x88
FINAL = re.compile(r"^(OK|ERROR|COMMAND NOT SUPPORT|\+CM[ES] ERROR: .*)$")


class Client:
    """A raw pyserial client, as the driver would be. Bytes read past a match are kept."""

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 115200, timeout=0.02)
        self.buf = b""

    def write(self, data: bytes) -> None:
        self.ser.write(data)

    def _fill(self) -> None:
        self.buf += self.ser.read(max(1, self.ser.in_waiting))

    def read_until(self, pattern: str, timeout: float = 1.0) -> str:
        """Read until ``pattern`` (a regex) matches; return the text up to the match's end."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.buf.decode("latin-1"), re.MULTILINE)
            if m:
                text, self.buf = self.buf[: m.end()].decode("latin-1"), self.buf[m.end() :]
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout} s; got {self.buf!r}")
            self._fill()

    def read_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds`` (plus what was already buffered)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill()
        data, self.buf = self.buf, b""
        return data

    def command(self, line: str, timeout: float = 1.0) -> list[str]:
        """Send one command line; return the non-empty lines up to the final result code."""
        self.write(line.encode() + b"\r")
        return self.final_lines(timeout)

    def final_lines(self, timeout: float = 1.0) -> list[str]:
        text = self.read_until(r"^(OK|ERROR|COMMAND NOT SUPPORT|\+CM[ES] ERROR: .*)\r\n", timeout)
        return [ln for ln in re.split(r"[\r\n]+", text) if ln]

    def close(self) -> None:
        self.ser.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(target: SimulatedModem | str, *, echo: bool = True, sync: bool = True) -> Client:
        """Open a client; ``sync`` swallows boot lines the kernel delivered after the open."""
        client = Client(target if isinstance(target, str) else target.path)
        clients.append(client)
        if sync:
            client.command("AT")
            client.buf = b""
        if not echo:
            assert client.command("ATE0")[-1] == "OK"
        return client

    yield make
    for client in clients:
        client.close()


def send_pdu(client: Client, pdu_hex: str, length: int, timeout: float = 1.0) -> list[str]:
    client.write(f"AT+CMGS={length}\r".encode())
    client.read_until(r"\r\n> $")
    client.write(pdu_hex.encode() + b"\x1a")
    return client.final_lines(timeout)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# ---------------------------------------------------------------- basics


def test_echo_until_ate0_and_framing(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800)
    c.write(b"AT\r")
    assert c.read_until(r"OK\r\n") == "AT\r\r\nOK\r\n"
    assert c.command("ATE0") == ["ATE0", "OK"]
    c.write(b"AT\r")
    assert c.read_until(r"OK\r\n") == "\r\nOK\r\n"


def test_line_endings_junk_prefix_and_lines_without_at(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert c.command("AT\n") == ["OK"]  # CR LF: the LF alone is an empty line
    c.write(b"AT+CSQ\n")
    assert c.final_lines() == ["+CSQ: 20,0", "OK"]
    c.write(b"\xff\xfe\x00AT\r")
    assert c.final_lines() == ["OK"]
    c.write(b"hello modem\r")
    assert c.read_for(0.1) == b""
    assert c.command("at+cgmi;+cgsn") == ["SIMCOM_Ltd", sim800.imei, "OK"]
    assert sim800.commands[-2:] == ["AT", "at+cgmi;+cgsn"]


def test_client_garbage_does_not_kill_the_simulator(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.write(bytes(range(256)) + b"\x1a\x1b" + b"A" * 5000 + b"\r")
    c.read_for(0.1)
    assert c.command("AT") == ["OK"]
    c.close()  # client goes away and comes back
    c2 = connect(sim800)
    assert c2.command("AT")[-1] == "OK"


def test_injected_garbage_reaches_the_client(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    sim800.inject_garbage(b"\xff\xfe\x00junk\r\n")
    assert c.read_for(0.05) == b"\xff\xfe\x00junk\r\n"
    assert c.command("AT") == ["OK"]


def test_unread_output_waits_without_busy_looping(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    sim800.inject_garbage(b"x" * 300_000)  # nobody has the port open: the pty fills up
    cpu = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - cpu < 0.15
    c = connect(sim800, sync=False)  # pyserial discards what was queued before it opened
    c.read_for(0.3)
    assert c.command("ATE0")[-1] == "OK"
    assert c.command("AT") == ["OK"]


def test_cmee_modes(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert c.command("AT+CMGR=999")[-1] == "ERROR"
    c.command("AT+CMEE=1")
    assert c.command("AT+CMGR=999")[-1] == "+CMS ERROR: 321"
    assert c.command("AT+CPIN=\"1111\"")[-1] == "+CME ERROR: 3"  # SIM is not asking for a PIN
    c.command("AT+CMEE=2")
    assert c.command("AT+CMGR=999")[-1] == "+CMS ERROR: invalid memory index"
    assert c.command("AT+FOO")[-1] == "ERROR"  # unknown commands ignore CMEE


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize(
    ("persona", "iccid_command", "prefix"),
    [("sim800", "AT+CCID", ""), ("huawei", "AT^ICCID?", "^ICCID: "), ("quectel", "AT+QCCID", "+QCCID: ")],
)
def test_identity_per_persona(
    persona: str, iccid_command: str, prefix: str, sim_factory: Callable[..., SimulatedModem],
    connect: Callable[..., Client],
) -> None:
    sim = sim_factory(persona, own_number="+15551234567")
    p = PERSONAS[persona]
    c = connect(sim, echo=False)
    assert c.command("AT+CGMI") == [p.manufacturer, "OK"]
    assert c.command("AT+CGMM") == [p.model, "OK"]
    assert c.command("AT+CGMR") == [p.firmware, "OK"]
    assert c.command("AT+CGSN") == [sim.imei, "OK"]
    assert c.command("AT+CIMI") == [sim.imsi, "OK"]
    assert c.command(iccid_command) == [prefix + sim.iccid, "OK"]
    assert c.command("AT+CNUM") == ['+CNUM: "","+15551234567",145', "OK"]
    others = {"AT+CCID", "AT^ICCID?", "AT+QCCID"} - {iccid_command}
    for other in others:
        assert c.command(other) == [p.unsupported]
    assert len(sim.imei) == 15 and luhn_ok(sim.imei) and sim.imei.startswith(p.tac)
    assert len(sim.iccid) == 20 and luhn_ok(sim.iccid) and sim.iccid.startswith("89")
    assert sim.persona == persona


def test_huawei_says_command_not_support(huawei: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(huawei, echo=False)
    assert c.command("AT+CEREG?") == ["COMMAND NOT SUPPORT"]
    assert c.command("AT+QCCID") == ["COMMAND NOT SUPPORT"]
    assert c.command("ATI")[:2] == ["Manufacturer: huawei", "Model: E173"]


def test_identities_differ_and_can_be_set(sim_factory: Callable[..., SimulatedModem]) -> None:
    a, b = sim_factory("sim800", start=False), sim_factory("sim800", start=False)
    assert len({a.imei, b.imei}) == 2 and len({a.iccid, b.iccid}) == 2 and len({a.imsi, b.imsi}) == 2
    assert a.name != b.name
    c = sim_factory("quectel", start=False, imei="861234567890123", iccid="8901", imsi="001011", name="q")
    assert (c.imei, c.iccid, c.imsi, c.name) == ("861234567890123", "8901", "001011", "q")
    with pytest.raises(SimulatorError, match="unknown simulator persona"):
        SimulatedModem("nokia")


def test_multi_port_personas(
    huawei: SimulatedModem, quectel: SimulatedModem, connect: Callable[..., Client]
) -> None:
    assert len(huawei.paths) == 3 and huawei.paths[0] == huawei.path
    assert len(quectel.paths) == 4 and quectel.paths[2] == quectel.path
    assert len(set(huawei.paths + quectel.paths)) == 7
    assert quectel.by_id_path is not None and quectel.by_id_path.endswith(f"_{quectel.imei}-if02-port0")
    assert os.path.realpath(quectel.by_id_path) == os.path.realpath(quectel.path)
    silent = connect(huawei.paths[1], sync=False)
    silent.write(b"AT\r")
    assert silent.read_for(0.1) == b""
    pcui = connect(huawei.paths[2], echo=False)
    assert pcui.command("AT+CGSN") == [huawei.imei, "OK"]
    assert pcui.command("AT+CMGF=0") == ["COMMAND NOT SUPPORT"]
    ppp = connect(quectel.paths[3], echo=False)
    assert ppp.command("AT+CPMS?") == ["ERROR"]
    at = connect(quectel, echo=False)
    assert at.command("AT+CEREG?") == ["+CEREG: 0,1", "OK"]


# ---------------------------------------------------------------- sending


def test_cmgs_dialogue_logs_the_decoded_submission(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 0", "OK"]
    [record] = sim800.sent
    assert (record.mr, record.to, record.text, record.part, record.total, record.ref) == (
        0, "+46708251358", "hellohello", 1, 1, None
    )
    assert record.pdu_hex == VECTOR_1 and record.modem == sim800.name
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 1", "OK"]
    sim800.next_mr = 255
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 255", "OK"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 0", "OK"]
    assert [r.mr for r in sim800.sent] == [0, 1, 255, 0]


def test_cmgs_with_echo_and_multipart_submit(quectel: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(quectel)  # echo on: the prompt and the PDU come back
    c.write(b"AT+CMGS=31\r")
    assert c.read_until(r"> $").endswith("AT+CMGS=31\r\r\n> ")
    c.write(VECTOR_4.encode() + b"\x1a")
    assert c.final_lines()[-2:] == ["+CMGS: 0", "OK"]
    [record] = quectel.sent
    assert (record.to, record.text, record.part, record.total, record.ref) == ("655345678", "a Man, my son", 3, 3, 0x88)
    parts = encode_submit("+46708251358", "x" * 200, concat_ref=7)
    assert len(parts) == 2
    for part in parts:
        assert send_pdu(c, part.hex, part.tpdu_length)[-1] == "OK"
    assert [(r.part, r.total, r.ref) for r in quectel.sent[1:]] == [(1, 2, 7), (2, 2, 7)]
    assert "".join(r.text for r in quectel.sent[1:]) == "x" * 200


def test_bad_pdus_answer_cms_304(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMEE=1")
    assert send_pdu(c, VECTOR_1, 22) == ["+CMS ERROR: 304"]  # length mismatch
    assert send_pdu(c, "00110XYZ", 3 + 4) == ["+CMS ERROR: 304"]  # not hex
    assert send_pdu(c, "0011000B91", 4 + 3) == ["+CMS ERROR: 304"]  # truncated: undecodable
    assert c.command("AT+CMGS=2") == ["+CMS ERROR: 304"]  # impossible length, no prompt
    assert sim800.sent == []


def test_escape_cancels_a_send(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.write(b"AT+CMGS=23\r")
    c.read_until(r"> $")
    c.write(VECTOR_1[:10].encode() + b"\x1b")
    assert c.final_lines() == ["OK"]
    assert sim800.sent == []
    assert c.command("AT") == ["OK"]


def test_fail_sends_then_success(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMEE=1")
    sim800.fail_sends(38, count=2)
    assert send_pdu(c, VECTOR_1, 23) == ["+CMS ERROR: 38"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMS ERROR: 38"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 0", "OK"]
    assert len(sim800.sent) == 1


def test_latency_delays_the_answer_not_the_log(sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    sim = sim_factory("sim800", latency_s=0.25)
    c = connect(sim, echo=False)
    c.write(b"AT+CMGS=23\r")
    c.read_until(r"> $")
    start = time.monotonic()
    c.write(VECTOR_1.encode() + b"\x1a")
    c.write(b"AT+CSQ\r")  # typed while the send is in flight: waits for it
    text = c.read_until(r"\+CMGS: 0\r\n")
    answered = time.monotonic()
    assert answered - start >= 0.24
    assert answered - sim.sent[0].time >= 0.24  # logged at Ctrl-Z, answered after the latency
    text += c.read_until(r"\+CSQ: .*\r\n\r\nOK\r\n")
    assert re.findall(r"[^\r\n]+", text) == ["+CMGS: 0", "OK", "+CSQ: 20,0", "OK"]


def test_text_mode_send(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMGF=1")
    c.write(b'AT+CMGS="+15557654321"\r')
    c.read_until(r"> $")
    c.write(b"plain text\x1a")
    assert c.final_lines() == ["+CMGS: 0", "OK"]
    assert (sim800.sent[0].to, sim800.sent[0].text) == ("+15557654321", "plain text")


# ---------------------------------------------------------------- faults


def test_client_process_killed_mid_send(sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    """Another process (a daemon) dies after Ctrl-Z; the next one finds a working modem."""
    sim = sim_factory("quectel", latency_s=0.3)
    script = (
        "import serial, sys, time\n"
        "s = serial.Serial(sys.argv[1], 115200, timeout=1, exclusive=True)\n"
        "s.write(b'ATE0\\r'); s.read_until(b'OK\\r\\n')\n"
        "s.write(b'AT+CMGS=23\\r'); s.read_until(b'> ')\n"
        f"s.write(b'{VECTOR_1}\\x1a'); s.flush(); print('written', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, sim.path], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 1
    while not sim.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.to for r in sim.sent] == ["+46708251358"]  # it left: the outcome is what is unknown
    c = connect(sim, echo=False)
    c.read_for(0.35)  # the late +CMGS answer, if it survives the reopen
    assert c.command("AT") == ["OK"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 1", "OK"]


def test_hang_drops_everything_then_recovers(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    sim800.hang(0.3)
    c.write(b"AT\r")
    assert c.read_for(0.2) == b""
    time.sleep(0.12)
    assert c.command("AT") == ["OK"]


def test_unplug_and_replug(sim800: SimulatedModem, connect: Callable[..., Client], sim_link_dir: Path) -> None:
    c = connect(sim800, echo=False)
    old_path, by_id = sim800.path, sim800.by_id_path
    assert by_id is not None and Path(old_path).parent == sim_link_dir
    sim800.unplug()
    with pytest.raises((serial.SerialException, OSError)):
        c.ser.read(1)
        c.ser.read(1)
    assert not os.path.lexists(old_path) and not os.path.lexists(by_id)
    with pytest.raises(serial.SerialException):
        serial.Serial(old_path)
    sim800.replug()
    assert sim800.path != old_path and os.path.exists(sim800.path)
    assert sim800.by_id_path == by_id and os.path.exists(by_id)
    c2 = connect(sim800)
    assert c2.command("AT") == ["AT", "OK"]  # power-up state: echo on again
    sim800.replug(new_path=False)
    assert os.path.exists(sim800.path)
    assert connect(sim800).command("AT")[-1] == "OK"


def test_replug_keeps_storage_and_mr(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert send_pdu(c, VECTOR_1, 23)[0] == "+CMGS: 0"
    sim800.deliver_sms("+15550001111", "kept")
    sim800.unplug()
    sim800.replug()
    c2 = connect(sim800, echo=False)
    assert send_pdu(c2, VECTOR_1, 23)[0] == "+CMGS: 1"
    assert c2.command("AT+CMGL=4")[0].startswith("+CMGL: 1,0,,")


def test_quectel_power_down_makes_the_port_vanish(quectel: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(quectel, echo=False)
    path = quectel.path
    c.write(b"AT+QPOWD\r")
    assert "POWERED DOWN" in c.read_until(r"POWERED DOWN\r\n")
    deadline = time.monotonic() + 1
    while quectel.plugged and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.lexists(path) and not quectel.plugged


def test_cfun_reset_restores_power_up_state(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMEE=1")
    assert c.command("AT+CFUN=1,1") == ["OK"]
    boot = c.read_until(r"SMS Ready\r\n")
    assert re.findall(r"[^\r\n]+", boot) == ["RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"]
    assert c.command("AT+CMGR=999") == ["AT+CMGR=999", "ERROR"]  # echo back on, CMEE 0


def test_pin_flow_and_puk_lock(sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    sim = sim_factory("sim800", pin="1234")
    c = connect(sim, echo=False)
    c.command("AT+CMEE=1")
    assert c.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert c.command("AT+CIMI") == ["+CME ERROR: 11"]
    assert c.command("AT+CMGS=23") == ["+CMS ERROR: 311"]
    assert c.command("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert c.command('AT+CPIN="0000"') == ["+CME ERROR: 16"]
    assert c.command('AT+CPIN="1234"') == ["OK"]
    assert "SMS Ready" in c.read_until(r"SMS Ready\r\n")
    assert c.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
    sim.require_pin("4321")
    for _ in range(3):
        assert c.command('AT+CPIN="9999"') == ["+CME ERROR: 16"]
    assert c.command("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert c.command('AT+CPIN="4321"') == ["+CME ERROR: 12"]
    assert c.command("AT+CMGL=4") == ["+CMS ERROR: 316"]
    assert c.command(f'AT+CPIN="{sim.puk}","5555"') == ["OK"]
    assert c.command("AT+CPIN?")[-2:] == ["+CPIN: READY", "OK"]


def test_no_network(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMEE=1")
    c.command("AT+CREG=1")
    sim800.set_network(False)
    assert c.read_until(r"\+CREG: 2\r\n")
    assert c.command("AT+CREG?") == ["+CREG: 1,2", "OK"]
    c.command("AT+CREG=0")
    assert c.command("AT+CREG?") == ["+CREG: 0,2", "OK"]
    assert c.command("AT+COPS?") == ["+COPS: 0", "OK"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMS ERROR: 331"]
    assert c.command('AT+CUSD=1,"*100#",15') == ["+CME ERROR: 30"]
    sim800.set_network(True)
    assert c.command("AT+COPS?") == ['+COPS: 0,0,"SimNet"', "OK"]
    assert send_pdu(c, VECTOR_1, 23) == ["+CMGS: 0", "OK"]


# ---------------------------------------------------------------- receiving


def test_deliver_stores_announces_and_reads(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert sim800.deliver_sms("+15550001111", "Hi there") == [1]
    assert c.read_until(r'\+CMTI: "SM",1\r\n') == '\r\n+CMTI: "SM",1\r\n'
    lines = c.command("AT+CMGR=1")
    assert lines[0].startswith("+CMGR: 0,,") and lines[-1] == "OK"
    message = decode(lines[1])
    assert (message.sender, message.text) == ("+15550001111", "Hi there")
    assert int(lines[0].rsplit(",", 1)[1]) == len(lines[1]) // 2 - 1 - int(lines[1][:2], 16)
    assert c.command("AT+CMGR=1")[0].startswith("+CMGR: 1,,")  # now read
    assert c.command("AT+CPMS?") == ['+CPMS: "SM",1,30,"SM",1,30,"SM",1,30', "OK"]
    assert c.command("AT+CMGD=1") == ["OK"]
    assert c.command("AT+CMGR=1") == ["OK"]  # SIM800: empty slot is a bare OK
    assert sim800.storage == []


def test_me_storage_and_pty_paths_without_link_dir(sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    sim = sim_factory("sim800", link_dir=None)
    assert sim.path.startswith("/dev/pts/") and sim.by_id_path is None
    c = connect(sim, echo=False)
    assert c.command('AT+CPMS="ME","ME","ME"') == ["+CPMS: 0,50,0,50,0,50", "OK"]
    assert sim.deliver_sms("+15550009999", "to the phone memory") == [1]
    assert c.read_until(r"\+CMTI: .*\r\n") == '\r\n+CMTI: "ME",1\r\n'
    assert [(m.storage, m.index, m.kind) for m in sim.storage] == [("ME", 1, "deliver")]
    assert c.command('AT+CPMS="XX"') == ["ERROR"]


def test_multipart_inbound_on_quectel(quectel: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(quectel, echo=False)
    text = "Long message " * 20
    assert quectel.deliver_sms("+15550002222", text) == [0, 1]  # Quectel counts from 0
    c.read_until(r'\+CMTI: "SM",1\r\n')
    lines = c.command("AT+CMGL=4")
    assert [ln.split(",")[0] for ln in lines[0:4:2]] == ["+CMGL: 0", "+CMGL: 1"]
    parts = [decode(pdu) for pdu in lines[1:4:2]]
    assert [p.concat[1:] for p in parts] == [(2, 1), (2, 2)]
    assert parts[0].concat[0] == parts[1].concat[0]
    assert "".join(p.text for p in parts) == text
    assert c.command("AT+CMGD=0,4") == ["OK"] and quectel.storage == []
    assert c.command("AT+CMEE=1") and c.command("AT+CMGR=0") == ["+CMS ERROR: 321"]


def test_direct_routing_with_cmt_and_cnma(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    c.command("AT+CMEE=1")
    assert c.command("AT+CSMS=1") == ["+CSMS: 1,1,1", "OK"]
    assert c.command("AT+CNMI=2,2,0,0,0") == ["OK"]
    assert sim800.deliver_sms("+15550003333", "direct") == []
    text = c.read_until(r"\+CMT: ,\d+\r\n[0-9A-F]+\r\n")
    pdu = re.search(r"\+CMT: ,\d+\r\n([0-9A-F]+)", text).group(1)  # type: ignore[union-attr]
    assert decode(pdu).text == "direct"
    assert c.command("AT+CNMA") == ["OK"]
    assert c.command("AT+CNMA") == ["+CMS ERROR: 340"]
    assert sim800.storage == []


def test_status_reports_direct_and_stored(sim800: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(sim800, echo=False)
    assert send_pdu(c, VECTOR_1, 23)[0] == "+CMGS: 0"
    c.command("AT+CNMI=2,1,0,1,0")
    sim800.send_status_report(0)
    text = c.read_until(r"\+CDS: \d+\r\n[0-9A-F]+\r\n")
    report = decode(re.search(r"\+CDS: \d+\r\n([0-9A-F]+)", text).group(1))  # type: ignore[union-attr]
    assert (report.reference, report.recipient, report.status) == (0, "+46708251358", 0)
    c.command("AT+CNMI=2,1,0,2,0")
    sim800.send_status_report(0, status=0x46)
    assert c.read_until(r'\+CDSI: "SM",1\r\n')
    stored = decode(c.command("AT+CMGR=1")[1])
    assert (stored.reference, stored.status) == (0, 0x46)
    with pytest.raises(SimulatorError, match="TP-MR 99"):
        sim800.send_status_report(99)


def test_huawei_cnmi_quirk_and_buffered_indications(huawei: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(huawei, echo=False)
    c.command("AT+CMEE=1")
    assert c.command("AT+CNMI?") == ["+CNMI: 0,0,0,0,0", "OK"]
    assert huawei.deliver_sms("+15550004444", "quiet", direct=False) == [0]
    assert c.read_for(0.05) == b""  # mode 0: the indication is buffered
    assert c.command("AT+CNMI=2,1,0,2,0") == ["+CMS ERROR: 303"]
    assert c.command("AT+CNMI=2,1,0,1,0") == ["OK"]
    assert c.read_until(r'\+CMTI: .*\r\n') == '\r\n+CMTI: "SM",0\r\n'  # flushed after the OK


def test_huawei_rssi_urcs(sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    sim = sim_factory("huawei", start=False)
    sim.rssi_interval_s = 0.05
    sim.start()
    c = connect(sim, echo=False)
    assert c.read_until(r"\^RSSI: 20\r\n", timeout=0.5)
    sim.set_signal(12)
    assert c.read_until(r"\^RSSI: 12\r\n", timeout=0.5)
    assert c.command("AT^CURC=0")[-1] == "OK"
    time.sleep(0.06)
    c.read_for(0.02)
    assert b"^RSSI" not in c.read_for(0.15)
    assert c.command("AT+CSQ") == ["+CSQ: 12,0", "OK"]


@pytest.mark.parametrize("persona", ["sim800", "huawei", "quectel"])
def test_ussd_reply_per_persona(persona: str, sim_factory: Callable[..., SimulatedModem], connect: Callable[..., Client]) -> None:
    sim = sim_factory(persona)
    sim.set_ussd_reply("*101#", "Data left: 1.5 GB")
    c = connect(sim, echo=False)
    assert c.command('AT+CUSD=1,"*101#",15') == ["OK"]
    line = c.read_until(r"\+CUSD: .*\r\n").strip()
    m = re.fullmatch(r'\+CUSD: 0,"([^"]*)",(\d+)', line)
    assert m is not None
    payload, dcs = m.group(1), int(m.group(2))
    if persona == "sim800":
        assert (payload, dcs) == ("Data left: 1.5 GB", 15)
    elif persona == "huawei":
        assert dcs == 15 and gsm7_unpack(bytes.fromhex(payload)).rstrip("@") == "Data left: 1.5 GB"
    else:
        assert dcs == 72 and bytes.fromhex(payload).decode("utf-16-be") == "Data left: 1.5 GB"
    assert c.command('AT+CUSD=1,"*999#",15') == ["OK"]
    assert c.read_until(r"\+CUSD: 4\r\n")


def test_huawei_accepts_packed_ussd_codes(huawei: SimulatedModem, connect: Callable[..., Client]) -> None:
    c = connect(huawei, echo=False)
    assert c.command('AT+CUSD=1,"AA180C3602",15') == ["OK"]  # "*100#" GSM-7 packed
    line = c.read_until(r"\+CUSD: .*\r\n").strip()
    packed = re.fullmatch(r'\+CUSD: 0,"([0-9A-F]+)",15', line).group(1)  # type: ignore[union-attr]
    assert gsm7_unpack(bytes.fromhex(packed)).rstrip("@") == PERSONAS["huawei"].default_ussd["*100#"]


# ---------------------------------------------------------------- pool and CLI


def test_pool_runs_mixed_personas(sim_link_dir: Path, connect: Callable[..., Client]) -> None:
    with SimulatorPool(4, link_dir=sim_link_dir) as pool:
        assert [m.persona for m in pool.modems] == ["sim800", "huawei", "quectel", "sim800"]
        assert [m.name for m in pool.modems] == ["sim1", "sim2", "sim3", "sim4"]
        assert len(set(pool.paths)) == 4
        for path in pool.paths:
            assert connect(path, echo=False).command("AT") == ["OK"]
    assert not any(os.path.lexists(p) for p in pool.paths)


def test_stop_removes_links_and_is_idempotent(sim_factory: Callable[..., SimulatedModem]) -> None:
    sim = sim_factory("huawei")
    paths = sim.paths
    assert all(os.path.exists(p) for p in paths)
    sim.stop()
    sim.stop()
    assert not any(os.path.lexists(p) for p in paths)


def test_cli_simulate_prints_paths_and_stops_on_sigterm(sim_link_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "simulate", "2", "--link-dir", str(sim_link_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "250"},
    )
    try:
        deadline = time.monotonic() + 10
        while len(list(sim_link_dir.glob("usb-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        links = sorted(p.name for p in sim_link_dir.glob("ttyUSB*"))
        assert len(links) == 4  # sim800 has 1 tty, huawei 3
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "sim800" in out and "huawei" in out and "stopped" in out
    assert not list(sim_link_dir.iterdir())


def test_scripted_replies_are_played_verbatim_with_pauses_and_count(
    sim800: SimulatedModem, connect: Callable[..., Client]
) -> None:
    client = connect(sim800, echo=False)
    sim800.script_reply("at+cgmm", ["\r\n^NWTIME: 18/03/09,12:36:21+4,00\r\n", 0.3,
                                    b"\r\nE1752\r\n\r\nOK\r\n"], times=1)
    client.write(b"AT+CGMM\r")
    assert client.read_until(r"\^NWTIME.*\r\n") == "\r\n^NWTIME: 18/03/09,12:36:21+4,00\r\n"
    assert client.read_for(0.1) == b""  # the pause
    assert client.final_lines() == ["E1752", "OK"]
    assert client.command("AT+CGMM") == ["SIMCOM_SIM800L", "OK"]  # played once only
    sim800.script_reply("AT+CSQ", "\r\n+CSQ: 18,99\r\n\r\nOK\r\n")
    assert client.command("AT+CSQ") == client.command("AT+CSQ") == ["+CSQ: 18,99", "OK"]
    sim800.clear_scripts()
    assert client.command("AT+CSQ") == [f"+CSQ: {sim800.rssi},0", "OK"]
    with pytest.raises(SimulatorError):
        sim800.script_reply("AT", "OK\r\n", times=0)
