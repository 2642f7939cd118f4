"""Field-level encoding and decoding against 23.040 / 23.038."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.errors import ApplianceError
from appliance.pdu import (
    Deliver,
    PduError,
    StatusReport,
    Submit,
    decode,
    encode_deliver,
    encode_status_report,
    encode_submit,
    gsm7_pack,
    gsm7_unpack,
)
from appliance.pdu.gsm7 import LOCKING_TABLES, SINGLE_SHIFT_TABLES, pack_septets, unpack_septets
from appliance.pdu.submit import decode_relative_validity, encode_relative_validity
from appliance.pdu.timestamp import decode_scts, encode_scts


def test_pdu_error_is_an_appliance_error() -> None:
    assert issubclass(PduError, ApplianceError)


# --- alphabet ------------------------------------------------------------------------------


def test_default_alphabet_differs_from_ascii_where_23038_says() -> None:
    table = LOCKING_TABLES["default"]
    assert len(table) == 128
    expected = {0x00: "@", 0x01: "£", 0x02: "$", 0x03: "¥", 0x11: "_", 0x24: "¤", 0x40: "¡",
                0x5B: "Ä", 0x5C: "Ö", 0x5D: "Ñ", 0x5E: "Ü", 0x5F: "§", 0x60: "¿", 0x7B: "ä",
                0x7C: "ö", 0x7D: "ñ", 0x7E: "ü", 0x7F: "à", 0x09: "Ç", 0x10: "Δ", 0x1A: "Ξ"}
    for code, char in expected.items():
        assert table[code] == char
    assert "`" not in table and table[0x1B] is None


def test_extension_table() -> None:
    ext = SINGLE_SHIFT_TABLES["default"]
    assert ext == {0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[",
                   0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}


def test_locking_tables_have_128_codes_and_no_character_twice() -> None:
    assert len(LOCKING_TABLES) == 13  # the default table and 12 national ones (not Spanish)
    for name, table in LOCKING_TABLES.items():
        chars = [c for c in table if c is not None]
        assert len(table) == 128 and len(set(chars)) == len(chars), name


def test_pack_matches_bitwise_reference() -> None:
    def reference(septets: bytes, fill: int) -> bytes:
        value = sum(s << (fill + 7 * i) for i, s in enumerate(septets))
        return value.to_bytes((len(septets) * 7 + fill + 7) // 8, "little")

    for n in [*range(0, 20), 152, 153, 160, 1023, 1024, 1025, 2500]:
        septets = bytes((i * 37 + 11) % 128 for i in range(n))
        for fill in (0, 1, 6) if n <= 1024 else (0,):
            packed = pack_septets(septets, fill)
            assert packed == reference(septets, fill), (n, fill)
            assert unpack_septets(packed, n, fill) == septets


def test_gsm7_pack_and_unpack() -> None:
    assert gsm7_pack("hellohello").hex().upper() == "E8329BFD4697D9EC37"
    assert gsm7_unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10) == "hellohello"
    assert gsm7_unpack(gsm7_pack("{}€ ok")) == "{}€ ok"
    with pytest.raises(PduError, match="GSM 7-bit"):
        gsm7_pack("жук")


def test_gsm7_unpack_trailing_cr_padding_and_at_signs() -> None:
    seven = "1234567"  # 7 septets: 7 spare bits; a sender pads them with CR (23.038 6.1.2.3.1)
    padded = pack_septets(bytes(ord(c) for c in seven) + b"\r")
    assert len(padded) == 7
    assert gsm7_unpack(padded) == seven
    assert gsm7_unpack(gsm7_pack("@" * 8)) == "@" * 8  # eight septets 00 fill 7 octets
    assert gsm7_unpack(gsm7_pack("abc@"), 4) == "abc@"


def test_gsm7_unpack_is_lenient() -> None:
    assert gsm7_unpack(bytes([0x1B])) == ""  # a lone escape is dropped
    # ESC + a code absent from the extension table shows the main-table character.
    assert gsm7_unpack(pack_septets(b"\x1b\x41"), 2) == "A"


# --- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("+46708251358", "0B916407281553F8"),
        ("655345678", "098156355476F8"),
        ("+1 (555) 010-2000", "0B915155102000F0"),
        ("1234", "04812143"),
    ],
)
def test_destination_address(number: str, field: str) -> None:
    (pdu,) = encode_submit(number, "x", request_status_report=False)
    assert pdu.hex.startswith("000100" + field + "0000")


@pytest.mark.parametrize("bad", ["", "   ", "+", "VODAFONE", "12a4", "+" + "1" * 21])
def test_bad_destination_is_rejected(bad: str) -> None:
    with pytest.raises(PduError):
        encode_submit(bad, "hi")


def test_smsc_field() -> None:
    (pdu,) = encode_submit("+15550100", "hi", smsc="+447785016005")
    assert pdu.hex.startswith("0791447758100650")
    assert pdu.tpdu_length == len(pdu.hex) // 2 - 8
    assert decode(pdu.hex).smsc == "+447785016005"


def test_alphanumeric_sender_length_is_in_semi_octets() -> None:
    (hexpdu,) = encode_deliver("InternetSMS", "hi", timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc))
    raw = bytes.fromhex(hexpdu)
    assert raw[2:4] == bytes((0x14, 0xD0))
    msg = decode(hexpdu)
    assert isinstance(msg, Deliver)
    assert msg.sender == "InternetSMS"
    for name in ["A", "Bank", "ABCDEFGHIJK"]:
        assert decode(encode_deliver(name, "x")[0]).sender == name
    with pytest.raises(PduError, match="11"):
        encode_deliver("ABCDEFGHIJKL", "x")


# --- validity period -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validity", "value"),
    [
        (0, 0),
        (300, 0),
        (301, 1),
        (timedelta(hours=12), 143),
        (timedelta(hours=12, minutes=1), 144),
        (timedelta(hours=24), 0xA7),
        (timedelta(days=2), 168),
        (timedelta(days=4), 0xAA),
        (timedelta(days=30), 196),
        (timedelta(days=31), 197),
        (timedelta(weeks=63), 0xFF),
        (timedelta(weeks=500), 0xFF),
    ],
)
def test_relative_validity_rounds_up(validity: timedelta | int, value: int) -> None:
    assert encode_relative_validity(validity) == value
    seconds = validity if isinstance(validity, int) else validity.total_seconds()
    if seconds <= 63 * 7 * 86400:
        assert decode_relative_validity(value).total_seconds() >= seconds


def test_relative_validity_round_trips_every_value() -> None:
    for value in range(256):
        assert encode_relative_validity(decode_relative_validity(value)) == value


def test_bad_validity() -> None:
    with pytest.raises(PduError):
        encode_relative_validity(-1)
    with pytest.raises(PduError):
        encode_submit("+1555", "x", validity="1h")  # type: ignore[arg-type]


# --- time stamps ---------------------------------------------------------------------------


def test_scts_negative_time_zone() -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone(timedelta(hours=-5, minutes=-45)))
    raw = encode_scts(when)
    assert raw[-1] == 0x3A  # 23 quarter hours as swapped BCD 0x32, sign bit 0x08
    assert decode_scts(raw) == when
    assert decode_scts(raw).utcoffset() == timedelta(hours=-5, minutes=-45)


def test_scts_sign_applies_independently_of_bcd() -> None:
    raw = bytes.fromhex("11309291024061")[:-1] + bytes((0x80 | 0x08,))  # "-08" quarters
    assert decode_scts(raw).utcoffset() == timedelta(hours=-2)


def test_scts_invalid_bcd_is_tolerated() -> None:
    stamp = decode_scts(bytes.fromhex("FFFFFFFFFFFFFF"))
    assert stamp.tzinfo is not None
    assert 1 <= stamp.month <= 12
    stamp = decode_scts(bytes.fromhex("1131A20AFA0400"))
    assert stamp.year == 2011 and stamp.tzinfo is not None


# --- deliver, status report, 8-bit ---------------------------------------------------------


def test_deliver_round_trip_multipart_16_bit_ref() -> None:
    text = "@" + "x" * 200 + "@"
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    pdus = encode_deliver("+4915112345678", text, timestamp=when, concat_ref=0xBEEF,
                          concat_ref_bits=16, smsc="+491710760000")
    assert len(pdus) == 2
    parts = [decode(p) for p in pdus]
    assert all(isinstance(m, Deliver) for m in parts)
    assert [m.concat for m in parts] == [(0xBEEF, 2, 1), (0xBEEF, 2, 2)]
    assert parts[0].text[0] == "@" and len(parts[0].text) == 152  # no lost first character
    assert "".join(m.text for m in parts) == text
    assert parts[0].timestamp == when and parts[0].sender == "+4915112345678"
    # 16-bit ref: UDH of 7 octets, no fill bits, UDL = 8 + 152.
    raw = bytes.fromhex(pdus[0])
    udl_pos = raw.index(bytes.fromhex("060804BEEF0201")) - 1
    assert raw[udl_pos] == 160


def test_8_bit_ref_fill_bit() -> None:
    pdus = encode_submit("+1555", "b" * 161, request_status_report=False)
    raw = bytes.fromhex(pdus[0].hex)
    assert raw[9] == 160  # UDL = 7 (6-octet UDH + 1 fill bit) + 153
    assert raw[10:16] == bytes.fromhex("050003000201")
    assert raw[16] == ord("b") << 1  # first septet starts after one fill bit


def test_flash_deliver_ucs2() -> None:
    msg = decode(encode_deliver("+1555", "ж", flash=True)[0])
    assert isinstance(msg, Deliver)
    assert (msg.flash, msg.encoding, msg.dcs) == (True, "ucs2", 0x18)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(0x00, "delivered"), (0x01, "delivered"), (0x1F, "delivered"), (0x20, "pending"),
     (0x30, "pending"), (0x3F, "pending"), (0x40, "failed"), (0x5F, "failed"),
     (0x60, "failed"), (0x7F, "failed"), (0xFF, "failed")],
)
def test_status_report_classes(status: int, outcome: str) -> None:
    hexpdu = encode_status_report(200, "+15550100", status=status)
    msg = decode(hexpdu)
    assert isinstance(msg, StatusReport)
    assert (msg.reference, msg.recipient, msg.status, msg.outcome) == (200, "+15550100", status, outcome)


def test_status_report_times() -> None:
    t1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-3)))
    t2 = datetime(2024, 1, 2, 3, 5, 5, tzinfo=timezone(timedelta(hours=-3)))
    msg = decode(encode_status_report(1, "12345", timestamp=t1, discharge_time=t2))
    assert isinstance(msg, StatusReport)
    assert (msg.timestamp, msg.discharge_time) == (t1, t2)


def test_eight_bit_data_with_udh() -> None:
    # DELIVER, DCS 04, UDH with a port-addressing IE (05) then 3 data octets.
    body = bytes.fromhex("0605040B8423F0") + b"\x01\x02\xff"
    hexpdu = (bytes.fromhex("0040048121430004") + bytes.fromhex("42101121000000")
              + bytes((len(body),)) + body).hex()
    msg = decode(hexpdu)
    assert isinstance(msg, Deliver)
    assert msg.encoding == "8bit"
    assert msg.data == b"\x01\x02\xff"
    assert msg.udh is not None and msg.udh.elements == ((0x05, bytes.fromhex("0B8423F0")),)


def test_turkish_locking_and_single_shift_decode() -> None:
    # UDH: single shift Turkish + locking shift Turkish; septets 0x07 = ı in the locking
    # table, ESC 0x47 = Ğ in the single-shift table.
    udh = bytes.fromhex("06240101250101")
    septets = bytes((0x07, 0x1B, 0x47, 0x40))  # ı Ğ İ
    header_septets = (len(udh) * 8 + 6) // 7
    ud = udh + pack_septets(septets, header_septets * 7 - len(udh) * 8)
    tpdu = bytes.fromhex("4004812143000042101121000000") + bytes((header_septets + 4,)) + ud
    msg = decode(tpdu.hex(), has_smsc=False)
    assert isinstance(msg, Deliver)
    assert msg.text == "ıĞİ"


def test_submit_decodes_absolute_validity() -> None:
    tpdu = bytes.fromhex("1900048121430000") + bytes.fromhex("42101121000000") + b"\x01\x41"
    msg = decode(tpdu, has_smsc=False)
    assert isinstance(msg, Submit)
    assert msg.validity is None and msg.validity_until == datetime(2024, 1, 11, 12, tzinfo=timezone.utc)
    assert msg.text == "A" and msg.reject_duplicates is False


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        ("", "empty"),
        ("0", "odd"),
        ("zz", "hex"),
        ("0003", "reserved"),
        ("0001", "ends"),
        ("0001000B916407281553F80000AA0AE8329B", "septets"),
        ("0011000B916407281553F80000AAA1" + "00" * 160, "more than 160"),
        ("0011000B916407281553F80008AA03004800", "odd"),
        ("0051000B916407281553F80000AA0709" + "00" * 7, "UDH"),
        ("0011000B916407281553F80024AA0100", "compressed"),
        ("FF11", "SMSC"),
    ],
)
def test_malformed_pdus_raise_pdu_error(pdu: str, message: str) -> None:
    with pytest.raises(PduError, match=message):
        decode(pdu)
