"""SMS-STATUS-REPORT tails (23.040 §9.2.2.3): what TP-PI announces and the PDU may lack.

One rule (appliance.pdu.decode's docstring): a TP-PI field missing or cut short at the end
of the PDU is absent and named in ``missing_fields``; the report's own fields never are.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.pdu import PduError, StatusReport, decode, encode_status_report, gsm7_pack

BASE = bytes.fromhex(encode_status_report(24, "+15550100", status=0x00))


def _report(tail: bytes) -> StatusReport:
    msg = decode((BASE + tail).hex())
    assert isinstance(msg, StatusReport)
    assert (msg.reference, msg.recipient, msg.status, msg.outcome) == (24, "+15550100", 0, "delivered")
    return msg


OK = bytes((2,)) + gsm7_pack("ok")  # UDL 2 septets + "ok"


@pytest.mark.parametrize(
    ("tail", "pid", "dcs", "text", "missing"),
    [
        (b"", None, None, "", ()),  # no TP-PI at all
        (bytes((0x07, 0x00, 0x00)) + OK, 0, 0, "ok", ()),  # everything there
        (bytes((0x04,)) + OK, None, None, "ok", ()),  # UD alone, default DCS
        (bytes((0x01,)), None, None, "", ("pid",)),  # PID announced, PDU ends
        (bytes((0x07,)), None, None, "", ("pid", "dcs", "user_data")),
        (bytes((0x03, 0x3F)), 0x3F, None, "", ("dcs",)),  # DCS announced, PDU ends
        (bytes((0x06,)), None, None, "", ("dcs", "user_data")),
        (bytes((0x07, 0x00, 0x00)), 0, 0, "", ("user_data",)),  # UD announced, PDU ends
        (bytes((0x04, 10)) + gsm7_pack("abc"), None, None, "", ("user_data",)),  # UD cut short
        (bytes((0x06, 0x08, 4, 0x00)), None, 0x08, "", ("user_data",)),  # UCS-2 UD cut short
        (bytes((0xFF, 0xFF, 0xFF)), None, None, "", ()),  # extension bit: filler
    ],
)
def test_tail_fields(tail: bytes, pid: int | None, dcs: int | None, text: str,
                     missing: tuple[str, ...]) -> None:
    msg = _report(tail)
    assert (msg.pid, msg.dcs, msg.text, msg.missing_fields) == (pid, dcs, text, missing)


def test_ucs2_text_in_the_tail() -> None:
    msg = _report(bytes((0x06, 0x08, 4)) + "ок".encode("utf-16-be"))
    assert (msg.encoding, msg.text, msg.missing_fields) == ("ucs2", "ок", ())


@pytest.mark.parametrize("cut", range(1, 16))
def test_a_pdu_ending_among_the_reports_own_fields_is_refused(cut: int) -> None:
    # MR, RA, SCTS, DT, ST: none of them is optional.
    with pytest.raises(PduError):
        decode(BASE[:-cut].hex())


@settings(max_examples=300, deadline=None)
@given(pi=st.integers(0, 0x7F), fields=st.binary(max_size=12), cut=st.integers(0, 12))
def test_any_tail_cut_anywhere_keeps_the_outcome(pi: int, fields: bytes, cut: int) -> None:
    tail = (bytes((pi,)) + fields)[: max(1, len(fields) + 1 - cut)]
    try:
        msg = decode((BASE + tail).hex())
    except PduError:
        return  # a malformed field that is there (e.g. compressed DCS), not a missing one
    assert isinstance(msg, StatusReport) and msg.outcome == "delivered"
    assert set(msg.missing_fields) <= {"pid", "dcs", "user_data"}


def test_status_report_text_with_an_unknown_language_is_flagged_too() -> None:
    raw = bytearray(BASE)
    raw[1] |= 0x40  # TP-UDHI
    udh = bytes.fromhex("03250120")  # locking shift, language id 0x20
    raw += bytes((0x02 | 0x04, 0x00, 5 + 2)) + udh + bytes.fromhex("78AF01")  # "ok" after 3 fill bits
    msg = decode(bytes(raw).hex())
    assert isinstance(msg, StatusReport)
    assert (msg.text, msg.unknown_language_ids, msg.missing_fields) == ("ok", (0x20,), ())
