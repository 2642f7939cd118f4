"""The 13 national languages of 23.038: tables, round trips, planner choice, inbound UDH IEs."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.pdu import (
    LANGUAGE_IDS,
    NATIONAL_LANGUAGES,
    Deliver,
    PduError,
    ShiftTables,
    Submit,
    UnencodableText,
    UnknownLanguage,
    decode,
    encode_deliver,
    encode_submit,
    parse_languages,
    plan,
)
from appliance.pdu.gsm7 import LOCKING_TABLES, SINGLE_SHIFT_TABLES, charset
from tests.utils.national import SENTENCES

# The Unicode block each table's own letters come from.
SCRIPTS = {
    "bengali": (0x0980, 0x09FF), "gujarati": (0x0A80, 0x0AFF), "hindi": (0x0900, 0x097F),
    "kannada": (0x0C80, 0x0CFF), "malayalam": (0x0D00, 0x0D7F), "oriya": (0x0B00, 0x0B7F),
    "punjabi": (0x0A00, 0x0A7F), "tamil": (0x0B80, 0x0BFF), "telugu": (0x0C00, 0x0C7F),
    "urdu": (0x0600, 0x06FF),
}
INDIC = tuple(SCRIPTS)


def _long(text: str, size: int = 300) -> str:
    return ((text + " ") * (size // len(text) + 1))[:size]


def _tables(lang: str) -> ShiftTables:
    return ShiftTables(lang if lang in LOCKING_TABLES else None, lang)


# --- the tables ------------------------------------------------------------------------------


def test_thirteen_languages_with_their_23038_identifiers() -> None:
    assert NATIONAL_LANGUAGES == (
        "turkish", "spanish", "portuguese", "bengali", "gujarati", "hindi", "kannada",
        "malayalam", "oriya", "punjabi", "tamil", "telugu", "urdu",
    )
    assert [LANGUAGE_IDS[n] for n in NATIONAL_LANGUAGES] == list(range(1, 14))
    assert set(SINGLE_SHIFT_TABLES) == {"default", *NATIONAL_LANGUAGES}
    assert set(LOCKING_TABLES) == {"default", *NATIONAL_LANGUAGES} - {"spanish"}  # A.3.2 void


@pytest.mark.parametrize(
    ("lang", "code", "char"),
    [
        ("turkish", 0x07, "ı"), ("turkish", 0x40, "İ"), ("portuguese", 0x16, "^"),
        ("bengali", 0x00, "\u0981"), ("bengali", 0x7F, "\u09f1"), ("gujarati", 0x3C, None),
        ("hindi", 0x00, "\u0901"), ("hindi", 0x1C, "\u091b"), ("hindi", 0x60, "\u0950"),
        ("hindi", 0x7F, "\u097f"), ("kannada", 0x00, None), ("kannada", 0x24, "\u0ca1"),
        ("malayalam", 0x7F, "\u0d79"), ("oriya", 0x60, "\u0b56"), ("punjabi", 0x09, None),
        ("tamil", 0x11, None), ("tamil", 0x25, None), ("telugu", 0x11, None),
        ("urdu", 0x00, "\u0627"), ("urdu", 0x7F, "\u0670"),
        ("hindi", 0x28, ")"), ("hindi", 0x29, "("), ("urdu", 0x2C, ","),
    ],
)
def test_locking_table_codes(lang: str, code: int, char: str | None) -> None:
    # Spot checks against the printed tables (A.3.x), errata included: Kannada 0x24 is
    # U+0CA1 (the spec prints U+0CAA twice); ')' before '(' is what 23.038 prints.
    assert LOCKING_TABLES[lang][code] == char


@pytest.mark.parametrize(
    ("lang", "code", "char"),
    [
        ("turkish", 0x47, "Ğ"), ("spanish", 0x09, "ç"), ("portuguese", 0x05, "ê"),
        ("bengali", 0x19, "\u09e6"), ("hindi", 0x19, "\u0964"), ("hindi", 0x2F, "\\"),
        ("hindi", 0x39, "\u0970"), ("tamil", 0x24, "\u0bee"), ("telugu", 0x22, "\u0c6c"),
        ("telugu", 0x1C, "\u0c66"), ("oriya", 0x20, "\u0b6a"), ("urdu", 0x3F, "\u06d4"),
        ("urdu", 0x19, "\u0600"),
    ],
)
def test_single_shift_table_codes(lang: str, code: int, char: str) -> None:
    assert SINGLE_SHIFT_TABLES[lang][code] == char


def test_every_single_shift_table_keeps_the_extension_characters_where_they_are() -> None:
    # 23.038 A.2.x all repeat the default extension table's FF { } \ [ ~ ] | ^ € codes.
    for lang in NATIONAL_LANGUAGES:
        table = SINGLE_SHIFT_TABLES[lang]
        for code, char in SINGLE_SHIFT_TABLES["default"].items():
            assert table.get(code) == char, (lang, hex(code))
        assert 0x1B not in table


def test_indic_tables_hold_their_script_digits_and_latin_letters() -> None:
    for lang, (low, high) in SCRIPTS.items():
        locking, single = LOCKING_TABLES[lang], SINGLE_SHIFT_TABLES[lang]
        assert "".join(c or "" for c in locking[0x30:0x3A]) == "0123456789"
        assert "".join(c or "" for c in locking[0x61:0x7B]) == "abcdefghijklmnopqrstuvwxyz"
        assert "".join(single[c] for c in range(0x41, 0x5B)) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        digits = [c for c in single.values() if unicodedata.category(c) == "Nd" and ord(c) > 0x7F]
        assert len(digits) == 10, lang  # the script's own digits are in the single-shift table
        for table in (locking, tuple(single.values())):
            for char in table:
                if char is None or ord(char) < 0x100 or char in "€।॥":
                    continue
                assert low <= ord(char) <= high, (lang, hex(ord(char)))
                assert unicodedata.name(char)  # an assigned code point, not a typo


def test_a_character_listed_twice_is_sent_with_the_lower_code() -> None:
    cs = charset("hindi", "hindi")
    assert cs.encode("¡*") == b"\x1b\x13\x1b\x0b"
    assert cs.decode(b"\x1b\x15\x1b\x18") == "¡*"  # the higher codes read the same


def test_unknown_table_names() -> None:
    with pytest.raises(UnknownLanguage) as err:
        charset("spanish", "spanish")
    assert (err.value.name, err.value.kind) == ("spanish", "locking")
    with pytest.raises(UnknownLanguage, match="klingon"):
        plan("x", national_languages=["klingon"])
    with pytest.raises(PduError, match="list"):
        plan("x", national_languages="hindi")
    assert parse_languages([" Hindi", "hindi", "TAMIL"]) == ("hindi", "tamil")


# --- round trips of real sentences -------------------------------------------------------------


@pytest.mark.parametrize("lang", NATIONAL_LANGUAGES)
def test_sentence_round_trip(lang: str) -> None:
    text = SENTENCES[lang]
    p = plan(text, national_languages=[lang])
    forced = plan(text, shift_tables=_tables(lang))
    assert forced.encoding == "gsm7" and forced.tables.national
    assert forced.tables.single == lang or forced.tables.locking == lang
    pdus = encode_submit("+919876543210", text, shift_tables=forced.tables, concat_ref=9)
    assert len(pdus) == forced.total
    decoded = [decode(x.hex) for x in pdus]
    assert "".join(m.text for m in decoded) == text
    for msg in decoded:
        assert isinstance(msg, Submit) and msg.udh is not None
        ids = {iei: data[0] for iei, data in msg.udh.elements if iei in (0x24, 0x25)}
        if forced.tables.single:
            assert ids[0x24] == LANGUAGE_IDS[forced.tables.single]
        if forced.tables.locking:
            assert ids[0x25] == LANGUAGE_IDS[forced.tables.locking]
    assert p.total <= forced.total or not p.tables.national


@pytest.mark.parametrize("lang", NATIONAL_LANGUAGES)
def test_300_characters_take_fewer_parts_with_the_national_tables(lang: str) -> None:
    text = _long(SENTENCES[lang])
    ucs2 = plan(text)
    national = plan(text, national_languages=[lang])
    assert ucs2.encoding == "ucs2" and ucs2.total == 5
    assert national.encoding == "gsm7" and lang in (national.locking_shift, national.single_shift)
    assert national.total == 3 and national.default_parts == 5
    assert national.summary.endswith("3 parts instead of 5")
    pdus = encode_submit("+15550100", text, national_languages=[lang])
    assert [p.text for p in pdus] == list(national.parts)
    assert "".join(decode(p.hex).text for p in pdus) == text


@pytest.mark.parametrize("lang", NATIONAL_LANGUAGES)
def test_national_tables_are_not_used_when_they_save_no_part(lang: str) -> None:
    text = SENTENCES[lang][:40]  # one UCS-2 part already
    p = plan(text, national_languages=[lang])
    assert (p.encoding, p.tables, p.total, p.default_parts) == ("ucs2", ShiftTables(), 1, 1)
    assert plan(text, national_languages=[lang], shift_tables=_tables(lang)).tables.national


def test_not_listed_means_not_used() -> None:
    text = _long(SENTENCES["hindi"])
    assert plan(text, national_languages=["tamil", "turkish"]).encoding == "ucs2"
    assert plan(text).encoding == "ucs2"


def test_tables_of_two_languages_pair_up() -> None:
    # Bengali has no danda in its tables; Hindi's single-shift table has it (0x19).
    text = _long("আগামীকাল সকাল দশটায় বিদ্যালয়ে অভিভাবক সভা হবে। দয়া করে সময়মতো আসুন।")
    assert plan(text, national_languages=["bengali"]).encoding == "ucs2"
    p = plan(text, national_languages=["bengali", "hindi"])
    assert (p.locking_shift, p.single_shift) == ("bengali", "hindi")
    assert p.encoding_label == "GSM-7, Bengali locking-shift and Hindi single-shift tables"
    assert "".join(decode(x.hex).text for x in encode_submit("+1555", text, shift_tables=p.tables)) == text


def test_one_shift_element_is_preferred_to_two_at_the_same_count() -> None:
    text = _long(SENTENCES["turkish"])  # fits the Turkish single-shift table alone
    p = plan(text, national_languages=["turkish"])
    assert (p.locking_shift, p.single_shift, p.unit_limit) == (None, "turkish", 149)


def test_shift_elements_are_counted_in_the_header() -> None:
    # 23.040: UDH = UDHL + IEs; GSM-7 user data starts on a septet boundary after it.
    hindi = "क" * 152
    one = plan(hindi, shift_tables=ShiftTables("hindi", None))
    two = plan(hindi, shift_tables=ShiftTables("hindi", "hindi"))
    assert (one.total, one.unit_limit, one.chars_left) == (1, 155, 3)  # UDH 4 octets: 5 septets
    assert (two.total, two.unit_limit, two.chars_left) == (1, 152, 0)  # UDH 7 octets: 8 septets
    assert plan("क" * 153, shift_tables=ShiftTables("hindi", "hindi")).unit_limit == 146
    assert plan("क" * 156, shift_tables=ShiftTables("hindi", None)).unit_limit == 149
    (pdu,) = encode_submit("+1555", hindi, shift_tables=two.tables, request_status_report=False)
    raw = bytes.fromhex(pdu.hex)
    udl_at = 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1  # SMSC 00, FO, MR, DA len, TOA, 4 digits, PID, DCS
    assert raw[udl_at] == 160 and raw[udl_at + 1 : udl_at + 8] == bytes.fromhex("06240106250106")
    multi = encode_submit("+1555", "क" * 300, national_languages=["hindi"], concat_ref=5)
    assert [len(decode(x.hex).text) for x in multi] == [149, 149, 2]  # locking shift alone


def test_forced_tables_that_cannot_carry_the_text() -> None:
    with pytest.raises(UnencodableText) as err:
        plan("नमस्ते 😀", shift_tables=ShiftTables("hindi", "hindi"))
    assert err.value.characters == "😀"
    assert ShiftTables.from_key(ShiftTables("bengali", "hindi").key) == ShiftTables("bengali", "hindi")
    assert ShiftTables.from_key("-/spanish") == ShiftTables(None, "spanish")
    assert ShiftTables.from_key("") == ShiftTables()
    with pytest.raises(UnknownLanguage):
        ShiftTables.from_key("spanish/-")


# --- inbound: SMS-DELIVER with UDH IEs 0x24 / 0x25 ---------------------------------------------


def _pack(septets: list[int], fill: int) -> bytes:
    value = sum(s << (fill + 7 * i) for i, s in enumerate(septets))
    return value.to_bytes((len(septets) * 7 + fill + 7) // 8, "little")


def _septets_by_hand(text: str, locking: str, single: str) -> list[int]:
    """Septets looked up in the tables directly (not through the codec's maps)."""
    main, ext = LOCKING_TABLES[locking], SINGLE_SHIFT_TABLES[single]
    out: list[int] = []
    for char in text:
        if char in main:
            out.append(main.index(char))
        else:
            out += [0x1B, min(c for c, x in ext.items() if x == char)]
    return out


def _deliver_hex(udh_body: bytes, septets: list[int]) -> str:
    udh = bytes((len(udh_body),)) + udh_body
    header_septets = (len(udh) * 8 + 6) // 7
    ud = udh + _pack(septets, header_septets * 7 - len(udh) * 8)
    head = bytes.fromhex("00" "44" "0B919189674523F1" "00" "00" "52111021000000")
    return (head + bytes((header_septets + len(septets),)) + ud).hex().upper()


@pytest.mark.parametrize(
    ("lang", "ies"),
    [(lang, ies) for lang in NATIONAL_LANGUAGES for ies in ("single", "locking", "both")
     if ies == "single" or lang in LOCKING_TABLES],  # no Spanish locking-shift table
)
def test_inbound_deliver_with_shift_ies(lang: str, ies: str) -> None:
    locking = lang if ies in ("locking", "both") else "default"
    single = lang if ies in ("single", "both") else "default"
    cs = charset(locking, single)
    text = "".join(c for c in SENTENCES[lang] if c in cs.chars)
    assert len(text) > 10
    body = b""
    if single != "default":
        body += bytes((0x24, 1, LANGUAGE_IDS[lang]))
    if locking != "default":
        body += bytes((0x25, 1, LANGUAGE_IDS[lang]))
    msg = decode(_deliver_hex(body, _septets_by_hand(text, locking, single)))
    assert isinstance(msg, Deliver)
    assert msg.text == text and msg.unknown_language_ids == ()
    assert msg.udh is not None
    assert (msg.udh.locking_shift, msg.udh.single_shift) == (
        None if locking == "default" else lang, None if single == "default" else lang)


def test_our_deliver_encoder_writes_the_same_ies() -> None:
    text = _long(SENTENCES["urdu"], 200)
    pdus = encode_deliver("+923001234567", text, national_languages=["urdu"], concat_ref=3)
    msgs = [decode(p) for p in pdus]
    assert all(isinstance(m, Deliver) and m.udh and (0x25, b"\x0d") in m.udh.elements for m in msgs)
    assert "".join(m.text for m in msgs) == text


def test_a_hindi_deliver_vector() -> None:
    # "नमस्ते" after UDH 03 25 01 06 (locking shift, Hindi): A.3.6 puts न at 2F, म 42, स 4C,
    # ् 5F, त 27, े 59; 4 UDH octets take 5 septets (3 fill bits), so UDL = 5 + 6 = 0B.
    # (The septets read "नमस्ते" in an independent 23.038 codec too.)
    vector = "00440B919189674523F1000052111021000000" "0B" "03250106" "780999DF5316"
    msg = decode(vector)
    assert isinstance(msg, Deliver) and msg.text == "नमस्ते"
    assert msg.udh is not None and msg.udh.locking_shift == "hindi"
    assert _deliver_hex(bytes.fromhex("250106"), [0x2F, 0x42, 0x4C, 0x5F, 0x27, 0x59]) == vector
    assert encode_deliver("+19987654321", "नमस्ते", shift_tables=ShiftTables("hindi", None))[0][-22:] == vector[-22:]


@pytest.mark.parametrize(("iei", "lang_id"), [(0x25, 14), (0x25, 0), (0x24, 0xFF), (0x25, 2)])
def test_unknown_language_id_decodes_with_the_default_table_and_is_flagged(iei: int, lang_id: int) -> None:
    # 0x25 with id 2: Spanish has no locking-shift table, so it is as unknown as id 14.
    septets = [ord(c) for c in "Hello"] + [0x1B, 0x65]  # "Hello€" in the default tables
    msg = decode(_deliver_hex(bytes((iei, 1, lang_id)), septets))
    assert isinstance(msg, Deliver)
    assert msg.text == "Hello€"
    assert msg.unknown_language_ids == (lang_id,)
    assert msg.udh is not None and msg.udh.locking_shift is None and msg.udh.single_shift is None


# --- properties ---------------------------------------------------------------------------------

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _alphabet(locking: str, single: str) -> str:
    return "".join(sorted(charset(locking, single).chars))


@fast
@given(data=st.data(), lang=st.sampled_from(NATIONAL_LANGUAGES), bits=st.sampled_from([8, 16]))
def test_random_text_from_each_table_round_trips(data: st.DataObject, lang: str, bits: int) -> None:
    tables = _tables(lang)
    alphabet = _alphabet(tables.locking or "default", lang)
    text = data.draw(st.text(alphabet=alphabet, min_size=1, max_size=500))
    p = plan(text, shift_tables=tables, concat_ref_bits=bits)
    pdus = encode_submit("+15550100", text, shift_tables=tables, concat_ref_bits=bits)
    assert [x.text for x in pdus] == list(p.parts)
    assert all(u <= p.unit_limit for u in p.units_per_part)
    assert "".join(decode(x.hex).text for x in pdus) == text
    delivered = encode_deliver("+15550100", text, shift_tables=tables, concat_ref_bits=bits)
    assert "".join(decode(x).text for x in delivered) == text


@fast
@given(data=st.data(), lang=st.sampled_from(NATIONAL_LANGUAGES))
def test_planner_picks_national_tables_only_for_fewer_parts(data: st.DataObject, lang: str) -> None:
    alphabet = _alphabet(_tables(lang).locking or "default", lang)
    text = data.draw(st.text(alphabet=alphabet, max_size=700))
    without, with_ = plan(text), plan(text, national_languages=[lang])
    assert with_.default_parts == without.total
    if with_.tables.national:
        assert with_.total < without.total
    else:
        assert (with_.encoding, with_.parts) == (without.encoding, without.parts)
    assert "".join(decode(x.hex).text for x in encode_submit("+1555", text, national_languages=[lang])) == with_.text


@settings(max_examples=200, deadline=None)
@given(lang=st.sampled_from(NATIONAL_LANGUAGES), ies=st.sampled_from([0x24, 0x25]),
       septets=st.lists(st.integers(0, 127), max_size=140))
def test_any_septets_under_any_table_decode(lang: str, ies: int, septets: list[int]) -> None:
    msg = decode(_deliver_hex(bytes((ies, 1, LANGUAGE_IDS[lang])), septets))
    assert isinstance(msg, Deliver)
    assert len(msg.text) <= len(septets)
