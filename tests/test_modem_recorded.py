"""The modem layer against answers recorded from real modems (tests/modem_recordings.py).

Every recording is played through the pty simulator (:meth:`SimulatedModem.script_reply`)
to the real transport and driver. Answers the layer cannot read must leave the port usable
and log one clear line: no traceback, no stuck worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.cli import app
from appliance.config import ModemConfig
from appliance.modem import ManagedModem
from appliance.modem.answers import parse_registration
from appliance.modem.driver import Modem, StorageUse
from appliance.modem.errors import CommandError, UssdError
from appliance.modem.simulator import SimulatedModem
from appliance.modem.transport import ATTransport, Urc
from appliance.modem.types import InboundSms, Registration
from appliance.pdu import encode_submit
import modem_recordings as rec
from modem_recordings import MmRegistration, Recording

GRACE = 0.2  # seconds a USSD release line waits for an answer after it, in these tests


class Collector:
    """Collects what a callback receives, from any thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 2.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.items) and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.items)


@pytest.fixture
def connect() -> Iterator[Callable[..., tuple[Modem, Collector, Collector]]]:
    made: list[Modem] = []

    def make(sim: SimulatedModem, *, init: bool = False) -> tuple[Modem, Collector, Collector]:
        sms, urcs = Collector(), Collector()
        modem = Modem.open(sim.path, name=sim.name, on_sms=sms, command_timeout=2.0,
                           resync_timeout=1.5)
        modem.urc_listeners.append(urcs)
        made.append(modem)
        if init:
            modem.initialize()
        else:
            modem.prepare()
        return modem, sms, urcs

    yield make
    for modem in made:
        modem.close()


@pytest.fixture
def transport() -> Iterator[Callable[[SimulatedModem], tuple[ATTransport, Collector]]]:
    made: list[ATTransport] = []

    def make(sim: SimulatedModem) -> tuple[ATTransport, Collector]:
        urcs = Collector()
        t = ATTransport(sim.path, name=sim.name, on_urc=urcs, resync_timeout=1.5).open()
        made.append(t)
        t.command("ATE0", timeout=1)
        return t, urcs

    yield make
    for t in made:
        t.close()


def play(sim: SimulatedModem, recording: Recording) -> None:
    sim.script_reply(recording.command, recording.reply)


def problems(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """Warnings (and worse) the modem layer logged about modem ``name``."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING
            and r.name.startswith("appliance.modem") and f"[{name}]" in r.getMessage()]


def assert_one_clear_line(caplog: pytest.LogCaptureFixture, name: str, words: str) -> None:
    found = problems(caplog, name)
    assert len(found) == 1, [r.getMessage() for r in found]
    assert words in found[0].getMessage()
    assert found[0].exc_info is None  # a line, not a traceback


def mm_reading(case: MmRegistration) -> tuple[int, int, int, int | None]:
    reading = parse_registration(case.name, case.args)
    assert reading is not None, case.test
    return (reading.stat, int(reading.lac, 16) if reading.lac else 0,
            int(reading.cell_id, 16) if reading.cell_id else 0, reading.act)


# --------------------------------------------------------------------------- USSD


@pytest.mark.parametrize(("recording", "expected", "closes_session"), [
    (rec.USSD_BALANCE, "Available Balance: R 96.45 .", False),
    (rec.USSD_BALANCE_BEFORE_OK, "Available Balance: R 96.45 .", False),
    (rec.USSD_MENU, "Hallo daar", True),
    # python-gsmmodem expects the CR LFs kept; the transport splits lines and joins with LF
    (rec.USSD_MULTILINE_MENU, "Bal:$100.00 *\nExp 01 Jan 2013\n1. Recharge\n2. Balance\n"
     "3. My Offer\n4. PlusPacks\n5. Tones&Extras\n6. History\n7. CredMe2U\n8. Hlp\n"
     "00. Home\n*charges can take 48hrs", True),
    (rec.USSD_RELEASE_THEN_ANSWER, "Wrong order test message", False),
    (rec.USSD_OK_RELEASE_THEN_ANSWER, "Notifications test", False),
    (rec.USSD_OTHER_CLIENT_THEN_ANSWER, "Test2", False),
], ids=["balance", "answer-before-OK", "menu", "multiline-menu", "release-then-answer",
        "OK-release-then-answer", "other-client-then-answer"])
def test_ussd_answers_recorded_by_python_gsmmodem(
    recording: Recording, expected: str, closes_session: bool, sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, recording)
    code = recording.command.split('"')[1]
    assert modem.ussd(code, timeout=2, release_grace=GRACE) == expected
    assert sum(c.upper() == "AT+CUSD=2" for c in sim800.commands) == int(closes_session)
    assert modem.command("AT") == []  # nothing of the USSD exchange leaks into the next


@pytest.mark.parametrize(("recording", "status", "text"), [
    (rec.USSD_GOODBYE, 2, "Totsiens"),
    (rec.USSD_BALANCES_ON_RELEASE, 2,
     "You have the following remaining balances:\n0 free minutes\n20 MORE Weekend minutes "),
    (rec.USSD_NOTIFICATION_BEFORE_OK, 2, "Notification before OK"),
    (rec.USSD_NOTIFICATION_APPENDED, 2, "Notification appended"),
    (rec.USSD_RELEASE_ALONE, 2,
     "Maaf, permintaan Anda tidak dapat kami proses. Silakan coba beberapa saat lagi."),
    (rec.USSD_UCS2_UNDER_GSM7_DCS, 2,
     "Havi keret: 0Ft. Feltöltött egyenleg: 7777Ft,(ebböl vàsàrlàsra is fordìthatò: 7777Ft)."
     " Dìjcsomag: Bencsò A. Uj Telekom önkiszolgàlò: *111#"),
    (rec.USSD_UCS2_WITH_LANGUAGE, 2, "رصيدك 107.93 د.ل،الصلاحية  2018-11-09"),
], ids=["Totsiens", "balances", "before-OK", "appended", "gammu-04", "gammu-358-M35",
        "gammu-377-HE910"])
def test_a_release_line_alone_is_a_typed_error_carrying_its_text(
    recording: Recording, status: int, text: str, sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, recording)
    code = recording.command.split('"')[1]
    start = time.monotonic()
    with pytest.raises(UssdError) as info:
        modem.ussd(code, timeout=2, release_grace=GRACE)
    assert time.monotonic() - start < 1.5  # the grace period, not the whole timeout
    err = info.value
    assert isinstance(err, CommandError)
    assert (err.status, err.text, err.modem) == (status, text, sim800.name)
    assert text not in err.message  # the data travels in fields, not in prose
    assert modem.command("AT") == []


@pytest.mark.parametrize(("recording", "check"), [
    (rec.USSD_E160_UNQUOTED,  # the recording's digits were overwritten with 6s upstream
     lambda t: t.startswith("Ihr Guthaben") and t.endswith(" beträgt 7.95 Euro")),
    (rec.USSD_E160_QUOTED,
     lambda t: t == "Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
    (rec.USSD_UCS2_CYRILLIC,
     lambda t: t == "Для справки о балансе наберите *105#. Услуга бесплатна."),
    (rec.USSD_PLAIN, lambda t: t == "On DATA Pack u have 3Gb 817Mb 169kb valid until "
     "21/05/2016   upto time of data recharge done by u."),
    # sent in the GSM character set ("{" is "ä" there); read as it stands
    (rec.USSD_GSM_CHARSET_MENU, lambda t: t == "Kontostand: 3.00 EUR Bitte w{hlen Sie: 1 "
     "Konto aufladen 2 CallNow Transfer"),
], ids=["01-E160", "02-E160", "issue109-E3276", "issue178-dell", "03-unknown"])
def test_ussd_encodings_recorded_by_gammu(
    recording: Recording, check: Callable[[str], bool], sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, recording)
    text = modem.ussd("*100#", timeout=2, release_grace=GRACE)
    assert check(text), text


def test_ussd_refused_for_no_network_keeps_its_code(sim800: SimulatedModem, connect) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, rec.USSD_NO_NETWORK)
    with pytest.raises(CommandError) as info:
        modem.ussd("*101#", timeout=2)
    assert (info.value.kind, info.value.code) == ("cme", 30)
    assert modem.signal().rssi == sim800.rssi


def test_cli_ussd_prints_the_answer_after_a_release_line_and_the_text_of_one_alone(
    sim800: SimulatedModem,
) -> None:
    runner = CliRunner()
    sim800.script_reply('AT+CUSD=1,"*100#",15', rec.USSD_RELEASE_THEN_ANSWER.reply)
    result = runner.invoke(app, ["ussd", sim800.path, "*100#"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "Wrong order test message"

    sim800.script_reply('AT+CUSD=1,"*130*111#",15', rec.USSD_GOODBYE.reply)
    result = runner.invoke(app, ["ussd", sim800.path, "*130*111#"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "Totsiens"
    assert "ended the USSD session (+CUSD: 2)" in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- registration

# ModemManager lists these as unsolicited, yet they carry <n> first like an answer: nothing
# in them tells them from one, so they are replayed while no read is pending.
SOLICITED_SHAPED_URCS = frozenset({
    "test_creg2_md400_unsolicited", "test_cgreg2_x220_unsolicited",
    "test_creg2_s8500_wave_unsolicited", "test_creg2_s8500_wave_multidigit_stat_unsolicited",
    "test_cereg2_altair_lte_solicited",
})


def test_registration_answers_recorded_by_modemmanager_answer_the_read(
    sim800: SimulatedModem, transport
) -> None:
    t, urcs = transport(sim800)
    cases = [c for c in rec.MM_REGISTRATION if c.mm_solicited]
    assert len(cases) == 20
    for case in cases:
        sim800.script_reply(f"AT{case.name}?", ("\r\n" + case.line.strip() + "\r\n",
                                                 "\r\nOK\r\n"))
        assert t.command(f"AT{case.name}?", timeout=1) == [case.line.strip()], case.test
        assert mm_reading(case) == (case.stat, case.lac, case.ci, case.act), case.test
    assert urcs.items == []


def test_registration_urcs_recorded_by_modemmanager_stay_urcs_during_a_read(
    sim800: SimulatedModem, transport
) -> None:
    t, urcs = transport(sim800)
    cases = [c for c in rec.MM_REGISTRATION
             if not c.mm_solicited and c.test not in SOLICITED_SHAPED_URCS]
    assert len(cases) == 23
    for n, case in enumerate(cases, 1):
        # the URC, then no answer line: any line taken for the answer would show
        sim800.script_reply(f"AT{case.name}?", (case.line, "\r\nOK\r\n"))
        assert t.command(f"AT{case.name}?", timeout=1) == [], case.test
        got = urcs.wait_for(lambda items, n=n: len(items) >= n)
        assert (got[-1].name, got[-1].line) == (case.name, case.line.strip()), case.test
        assert mm_reading(case) == (case.stat, case.lac, case.ci, case.act), case.test


def test_solicited_shaped_registration_urcs_arrive_as_urcs(
    sim800: SimulatedModem, transport
) -> None:
    _, urcs = transport(sim800)
    cases = [rec.mm_case(test) for test in sorted(SOLICITED_SHAPED_URCS)]
    for n, case in enumerate(cases, 1):
        sim800.inject_garbage(case.line.encode())
        got = urcs.wait_for(lambda items, n=n: len(items) >= n)
        assert got[-1].line == case.line.strip(), case.test
        assert mm_reading(case) == (case.stat, case.lac, case.ci, case.act), case.test


def script_registration(sim: SimulatedModem, recording: Recording) -> None:
    """The recording answers its read; the other two reads answer ERROR (as on a modem
    without them — a filler of ours, not a recording)."""
    for name in ("+CREG", "+CGREG", "+CEREG"):
        sim.script_reply(f"AT{name}?", "\r\nERROR\r\n")
    play(sim, recording)


@pytest.mark.parametrize(("urc", "answer", "expected"), [
    ("test_creg2_sek850i_unsolicited", "test_creg2_sek850i_solicited",
     Registration("home", None, "CE00", "01CEAD8F")),
    ("test_creg2_e160g_unsolicited", "test_creg2_e160g_solicited",
     Registration("home", None, "8BE3", "2BAF")),
    ("test_cgreg2_f3607gw_unsolicited", "test_cgreg2_f3607gw_solicited",
     Registration("home", "EDGE", "8BE3", "00002B5D")),
    ("test_cgreg2_thuraya_unsolicited", "test_cgreg2_thuraya_solicited",
     Registration("home", None, "0426", "F00F")),
    ("test_cereg2_novatel_lte_unsolicited", "test_cereg2_novatel_lte_solicited",
     Registration("home", "LTE", "1F00", "79D903")),
], ids=["CREG-K850i", "CREG-E160G", "CGREG-F3607gw", "CGREG-Thuraya", "CEREG-Novatel"])
def test_a_registration_urc_just_before_the_answer(
    urc: str, answer: str, expected: Registration, sim800: SimulatedModem, connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    modem, _, urcs = connect(sim800)
    script_registration(sim800, rec.registration_urc_then_answer(urc, answer))
    assert modem.registration() == expected
    got = urcs.wait_for(lambda items: len(items) >= 1)
    assert [u.line for u in got] == [rec.mm_case(urc).line.strip()]
    assert problems(caplog, sim800.name) == []


@pytest.mark.parametrize(("recording", "expected", "odd"), [
    (rec.CREG_HUAWEI_UNQUOTED, Registration("home", None, "4CA", "81DE445"), False),
    (rec.CREG_NONE, Registration("not_registered"), False),
    (rec.CREG_SIERRA_ROAMING, Registration("roaming", "UMTS", "2AF5", "0B88E350"), False),
    (rec.CREG_TELIT, Registration("home", "UMTS", "5E25", "605F"), False),
    (rec.CREG_SIEMENS, Registration("home", None, "5E25", "605F"), False),
    (rec.CREG_EMPTY_LAC, Registration("home", None, None, "605F"), False),
    (rec.CREG_SINGLE_QUOTE, Registration("home", None, "5E25", None), False),
    (rec.CREG_MISMATCHED_QUOTES, Registration("home", None, None, None), True),
], ids=lambda v: v.source.split("/", 1)[1] if isinstance(v, Recording) else None)
def test_creg_answers_recorded_by_gammu(
    recording: Recording, expected: Registration, odd: bool, sim800: SimulatedModem, connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    modem, _, _ = connect(sim800)
    script_registration(sim800, recording)
    assert modem.registration() == expected
    assert modem.registration() == expected
    if odd:  # once, though the modem said it twice
        assert_one_clear_line(caplog, sim800.name, "AT+CREG?")
    else:
        assert problems(caplog, sim800.name) == []
    assert modem.signal().rssi == sim800.rssi


# --------------------------------------------------------------------------- storage, signal


@pytest.mark.parametrize(("answer", "expected"), [
    (rec.CPMS_READ_ANSWERS[0], (StorageUse("read", "ME", 1, 100),
                                StorageUse("write", "MT", 5, 100),
                                StorageUse("receive", "TA", 1, 100))),
    (rec.CPMS_READ_ANSWERS[1], (StorageUse("read", "SM", 100, 100),
                                StorageUse("write", "SR", 5, 10),
                                StorageUse("receive", "TA", 1, 100))),
    (rec.CPMS_READ_ANSWERS[2], (StorageUse("read", "MT", 0, 100),
                                StorageUse("write", "MT", 0, 100),
                                StorageUse("receive", "MT", 0, 100))),
], ids=["ME-MT-TA", "SM-SR-TA", "blanks"])
def test_cpms_answers_recorded_by_modemmanager(
    answer: str, expected: tuple[StorageUse, ...], sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    sim800.script_reply("AT+CPMS?", f"\r\n{answer}\r\n\r\nOK\r\n")
    assert modem.storage() == expected


def test_an_empty_cpms_answer_logs_one_line(
    sim800: SimulatedModem, connect, caplog: pytest.LogCaptureFixture
) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, rec.CPMS_EMPTY)
    assert modem.storage() == ()
    assert modem.storage() == ()
    assert_one_clear_line(caplog, sim800.name, "AT+CPMS?")
    assert modem.signal().rssi == sim800.rssi


@pytest.mark.parametrize(("recording", "answer", "urc"), [
    (rec.CPMS_AFTER_NWTIME, "+CPMS: 0,20,0,20,0,20", "^NWTIME: 18/03/09,12:36:21+4,00"),
    (rec.CPMS_AFTER_CMTI, "+CPMS: 1,20,1,20,1,20", '+CMTI: "SM",1'),
], ids=["nwtime_test", "second_test"])
def test_a_urc_ahead_of_an_echoed_answer(
    recording: Recording, answer: str, urc: str, sim800: SimulatedModem, transport
) -> None:
    t, urcs = transport(sim800)
    play(sim800, recording)
    assert t.command(recording.command, timeout=1) == [answer]
    got: list[Urc] = urcs.wait_for(lambda items: len(items) >= 1)
    assert [u.line for u in got] == [urc]


def test_csq_answers_recorded_by_python_gsmmodem(sim800: SimulatedModem, connect) -> None:
    modem, _, _ = connect(sim800)
    for answer, rssi in rec.CSQ_ANSWERS:
        sim800.script_reply("AT+CSQ", f"{answer}\r\nOK\r\n")
        assert modem.signal().rssi == rssi, answer
    assert modem.signal().dbm is None  # 99: unknown
    sim800.script_reply("AT+CSQ", "OK\r\n")  # python-gsmmodem's "unparseable response"
    with pytest.raises(CommandError):
        modem.signal()


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("fake", sorted(rec.IDENTITIES))
def test_identity_of_python_gsmmodem_fake_modems(
    fake: str, sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    answers = rec.IDENTITIES[fake]
    for command, reply in answers.items():
        sim800.script_reply(command, reply)
    ident = modem.identity()
    first = {c: reply[0].strip() for c, reply in answers.items() if reply[-1] == "OK\r\n"}
    assert ident.manufacturer == first["AT+CGMI"]
    assert ident.model == first["AT+CGMM"]
    assert ident.firmware == first.get("AT+CGMR")  # the Wavecom answers ERROR
    assert ident.imei == ident.imsi == "111111111111111"
    assert ident.iccid == sim800.iccid  # not scripted: the simulator's own


@pytest.mark.parametrize(("recording", "model"), rec.MODELS,
                         ids=[r.source.rsplit("/", 1)[1] for r, _ in rec.MODELS])
def test_cgmm_answers_recorded_by_gammu(
    recording: Recording, model: str, sim800: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(sim800)
    play(sim800, recording)
    assert modem.identity().model == model


@pytest.mark.parametrize("line", rec.HUAWEI_URCS)
def test_huawei_urcs_ahead_of_the_cgmm_answer(
    line: str, sim800: SimulatedModem, connect
) -> None:
    modem, _, urcs = connect(sim800)
    sim800.script_reply("AT+CGMM", (f"\r\n{line}\r\n", *rec.HUAWEI_E1752_CGMM))
    assert modem.identity().model == "E1752"
    got: list[Urc] = urcs.wait_for(lambda items: len(items) >= 1)
    assert [u.line for u in got] == [line]
    if line.startswith("^RSSI"):
        assert modem.last_signal is not None and modem.last_signal.rssi == 18


def test_a_vendor_command_still_gets_its_own_answer(
    huawei: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(huawei)
    assert modem.iccid() == huawei.iccid  # AT^ICCID? answers "^ICCID: ..."
    assert modem.command("AT^CURC?") == ["^CURC: 1"]


# --------------------------------------------------------------------------- stored messages


def test_cmgl_recorded_by_python_gsmmodem_is_handed_over_and_deleted(
    huawei: SimulatedModem, connect
) -> None:
    modem, sms, _ = connect(huawei, init=True)
    huawei.script_reply("AT+CMGL=4", rec.CMGL_GSMMODEM)
    assert modem.process_stored() == 3
    got: list[InboundSms] = sms.items
    assert [(m.index, m.message.sender, m.message.text) for m in got] == list(
        rec.CMGL_GSMMODEM_EXPECTED)
    assert [c for c in huawei.commands if c.startswith("AT+CMGD=")] == [
        "AT+CMGD=0", "AT+CMGD=1", "AT+CMGD=2"]


def test_a_junk_line_between_cmgl_header_and_pdu_is_skipped(
    huawei: SimulatedModem, connect, caplog: pytest.LogCaptureFixture
) -> None:
    modem, _, _ = connect(huawei, init=True)
    reply = list(rec.CMGL_GSMMODEM)
    reply.insert(1, rec.CMGL_JUNK_LINE)  # where python-gsmmodem's test puts it
    huawei.script_reply("AT+CMGL=4", reply)
    listed = modem.list_stored()
    assert [(s.index, s.stat) for s in listed] == [(0, 0), (1, 1), (2, 1)]
    assert listed[0].pdu_hex == rec.CMGL_GSMMODEM[1].strip()
    assert_one_clear_line(caplog, huawei.name, "skipped 1 line")


def test_cmgl_framing_recorded_by_modemmanager(huawei: SimulatedModem, connect) -> None:
    modem, _, _ = connect(huawei, init=True)
    huawei.script_reply("AT+CMGL=4", f"\r\n{rec.CMGL_MM_GENERIC}\r\n\r\nOK\r\n")
    assert [(s.index, s.stat, s.pdu_hex) for s in modem.list_stored()] == [
        (i, 1, rec.CMGL_MM_GENERIC_PDU) for i in range(3)]
    huawei.script_reply("AT+CMGL=4", f"\r\n{rec.CMGL_MM_PANTECH}\r\n\r\nOK\r\n")
    assert [(s.index, s.stat, s.pdu_hex) for s in modem.list_stored()] == list(
        rec.CMGL_MM_PANTECH_EXPECTED)


def test_undecodable_stored_messages_stay_and_are_logged_once_each(
    huawei: SimulatedModem, connect, caplog: pytest.LogCaptureFixture
) -> None:
    modem, sms, _ = connect(huawei, init=True)
    huawei.script_reply("AT+CMGL=4", f"\r\n{rec.CMGL_MM_PANTECH}\r\n\r\nOK\r\n")
    assert modem.process_stored() == 0
    assert modem.process_stored() == 0  # the next poll finds them again
    found = problems(caplog, huawei.name)
    assert [r.getMessage().split(" does not decode")[0] for r in found] == [
        f"[{huawei.name}] stored message SM/{i}" for i in (17, 15, 13, 11)]
    assert all(r.exc_info is None for r in found)
    assert sms.items == [] and not any(c.startswith("AT+CMGD") for c in huawei.commands)


@pytest.mark.parametrize("stored", rec.CMGR_GAMMU, ids=lambda s: s.dump)
def test_cmgr_headers_recorded_by_gammu(stored: rec.StoredRead, huawei: SimulatedModem,
                                        connect) -> None:
    modem, _, _ = connect(huawei)
    play(huawei, stored.recording)
    got = modem.read_stored(stored.index)
    assert got is not None and (got.index, got.stat, got.pdu_hex) == (
        stored.index, stored.stat, stored.pdu)


@pytest.mark.parametrize(("recording", "pdu", "stat"), [
    (rec.CMGR_MM_INLINE, rec.CMGL_MM_GENERIC_PDU, 1),
    (rec.CMGR_MM_TELIT, rec.CMGR_MM_TELIT_PDU, 0),
], ids=["inline", "telit"])
def test_cmgr_framing_recorded_by_modemmanager(
    recording: Recording, pdu: str, stat: int, huawei: SimulatedModem, connect
) -> None:
    modem, _, _ = connect(huawei)
    play(huawei, recording)
    got = modem.read_stored(0)
    assert got is not None and (got.stat, got.pdu_hex) == (stat, pdu)


@pytest.mark.parametrize("stored", rec.CMGR_GAMMU_FAILING, ids=lambda s: s.dump)
def test_an_unreadable_indicated_message_leaves_the_port_usable(
    stored: rec.StoredRead, sim800: SimulatedModem, connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    modem, sms, _ = connect(sim800, init=True)
    play(sim800, stored.recording)
    sim800.inject_garbage(f'\r\n+CMTI: "SM",{stored.index}\r\n'.encode())
    deadline = time.monotonic() + 2
    while not problems(caplog, sim800.name) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_one_clear_line(caplog, sim800.name, f"stored message SM/{stored.index} does not "
                                               "decode")
    assert stored.pdu[:20] not in caplog.text  # no message content in the log
    assert sms.items == [] and not any(c.startswith("AT+CMGD") for c in sim800.commands)
    assert modem.send_pdu(encode_submit("+15551234567", "still fine")[0], timeout=2) == 0


# --------------------------------------------------------------------------- a worker


def test_a_managed_modem_with_odd_answers_comes_online_and_keeps_working(
    sim800: SimulatedModem, sim_link_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    play(sim800, rec.CREG_MISMATCHED_QUOTES)
    sim800.script_reply("AT+CGMM", ("\r\n^NWTIME: 18/03/09,12:36:21+4,00\r\n",
                                    "SIMCOM_SIM800L\r\n", "OK\r\n"))
    sim800.script_reply("AT+CMGL=4", f"\r\n{rec.CMGL_MM_PANTECH}\r\n\r\nOK\r\n")
    m = ManagedModem(ModemConfig(name="odd", port=sim800.path),
                     scan_patterns=[str(sim_link_dir / "ttyUSB*")], poll_interval=0.1,
                     command_timeout=0.5, probe_timeout=0.4, backoff_initial=0.1,
                     backoff_max=0.4, boot_timeout=2.0, resync_timeout=0.6, send_timeout=3.0)
    m.start()
    try:
        assert m.wait_online(3)
        polls = sum(c == "AT+CREG?" for c in sim800.commands)
        deadline = time.monotonic() + 3
        while sum(c == "AT+CREG?" for c in sim800.commands) < polls + 3:
            assert time.monotonic() < deadline, "the worker stopped polling"
            time.sleep(0.05)
        assert m.online and m.registration is not None and m.registration.registered
        assert m.identity is not None and m.identity.model == "SIMCOM_SIM800L"
        assert m.send_pdu(encode_submit("+15551234567", "odd but fine")[0]) == 0
    finally:
        m.stop(timeout=2)
    lines = [r.getMessage() for r in problems(caplog, "odd")]
    assert sum("AT+CREG?" in line for line in lines) == 1, lines  # once, though polled often
    assert sum("does not decode" in line for line in lines) == 4, lines  # one per message
    assert all(r.exc_info is None for r in problems(caplog, "odd"))
