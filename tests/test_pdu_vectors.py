"""The verified vectors of pdu-notes.md, decoded and (where they are SUBMITs) re-encoded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.pdu import Deliver, StatusReport, Submit, decode, encode_submit

V1 = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
V2 = "0011000B916407281553F80000FF121BD426B5E16D7C9BDE86B2796D809B32"
V3 = "0011000B916407281553F80008FF0A004800690020D83DDE00"
V4 = "005100098156355476F80000AA14050003880303C2A066D8CD02B5F3A0F9DB0D"
V5 = "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442"
V6 = "0791538375000075061805810531F1019082416500400190824165004000"
V7 = "0001000B914356143254F6001006E8721E947F03"


def test_v1_submit_hellohello() -> None:
    (pdu,) = encode_submit(
        "+46708251358", "hellohello", request_status_report=False, validity=timedelta(days=4)
    )
    assert pdu.hex == V1
    assert pdu.tpdu_length == 23
    assert (pdu.part, pdu.total, pdu.ref, pdu.text) == (1, 1, None, "hellohello")
    msg = decode(V1)
    assert isinstance(msg, Submit)
    assert (msg.to, msg.text, msg.validity) == ("+46708251358", "hellohello", timedelta(days=4))
    assert msg.smsc is None and msg.concat is None and not msg.request_status_report


def test_v2_extension_table_costs_two_septets() -> None:
    text = "{}[]~^\\|€"
    (pdu,) = encode_submit(
        "+46708251358", text, request_status_report=False, validity=timedelta(weeks=63)
    )
    assert pdu.hex == V2
    assert pdu.tpdu_length == 30
    msg = decode(V2)
    assert isinstance(msg, Submit)
    assert msg.text == text
    assert bytes.fromhex(V2)[14] == 18  # UDL: 18 septets for 9 characters


def test_v3_ucs2_with_surrogate_pair() -> None:
    (pdu,) = encode_submit(
        "+46708251358", "Hi 😀", request_status_report=False, validity=timedelta(weeks=63)
    )
    assert pdu.hex == V3
    assert pdu.encoding == "ucs2"
    msg = decode(V3)
    assert isinstance(msg, Submit)
    assert (msg.text, msg.encoding) == ("Hi 😀", "ucs2")


def test_v4_third_part_of_concatenated_message() -> None:
    text = "x" * 153 * 2 + "a Man, my son"
    pdus = encode_submit(
        "655345678", text, concat_ref=0x88, request_status_report=False,
        validity=timedelta(days=4),
    )
    assert [p.part for p in pdus] == [1, 2, 3]
    assert pdus[2].hex == V4
    assert pdus[2].ref == 0x88 and pdus[2].text == "a Man, my son"
    msg = decode(V4)
    assert isinstance(msg, Submit)
    assert (msg.to, msg.text, msg.concat) == ("655345678", "a Man, my son", (0x88, 3, 3))


def test_v5_deliver_alphanumeric_sender_ucs2() -> None:
    msg = decode(V5)
    assert isinstance(msg, Deliver)
    assert msg.smsc == "+79037011111"
    assert msg.sender == "InternetSMS" and msg.sender_toa == 0xD0
    assert (msg.text, msg.encoding, msg.flash, msg.concat) == ("тест", "ucs2", False, None)
    assert msg.timestamp == datetime(2011, 3, 29, 19, 20, 4, tzinfo=timezone(timedelta(hours=4)))
    assert msg.timestamp.utcoffset() == timedelta(hours=4)


def test_v6_status_report_delivered() -> None:
    msg = decode(V6)
    assert isinstance(msg, StatusReport)
    assert (msg.reference, msg.recipient, msg.status, msg.outcome) == (24, "50131", 0, "delivered")
    tz = timezone(timedelta(hours=1))
    assert msg.timestamp == datetime(2010, 9, 28, 14, 56, 0, tzinfo=tz)
    assert msg.discharge_time == datetime(2010, 9, 28, 14, 56, 0, tzinfo=tz)


def test_v7_flash_message() -> None:
    (pdu,) = encode_submit("+34654123456", "hey yo", request_status_report=False, flash=True)
    assert pdu.hex == V7
    msg = decode(V7)
    assert isinstance(msg, Submit)
    assert (msg.text, msg.flash, msg.validity) == ("hey yo", True, None)


@pytest.mark.parametrize("vector", [V1, V2, V3, V4, V5, V6, V7])
def test_vectors_decode_without_smsc_field_when_told(vector: str) -> None:
    smsc_len = int(vector[:2], 16)
    bare = vector[2 + 2 * smsc_len :]
    assert decode(bare, has_smsc=False) == decode(vector).__class__(
        **{**decode(vector).__dict__, "smsc": None}
    )
