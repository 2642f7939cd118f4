"""Property tests: encode → decode round trips, size limits, decoder fuzzing, cross-check."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance.pdu import (
    NATIONAL_LANGUAGES,
    PduError,
    Submit,
    decode,
    encode_deliver,
    encode_submit,
    plan,
)
from appliance.pdu.gsm7 import LOCKING_TABLES, SINGLE_SHIFT_TABLES

GSM_BASIC = "".join(c for c in LOCKING_TABLES["default"] if c)
GSM_EXT = "".join(SINGLE_SHIFT_TABLES["default"].values())
TRICKY = "“”‘’–—…\u00a0çĞşıñáãõ😀👍🏽🇸🇪‍\u0301жé"

texts = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=GSM_BASIC + GSM_EXT, max_size=600),
    st.text(alphabet=GSM_BASIC + GSM_EXT + TRICKY, max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=120),
)

fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ud_limits(raw: bytes, msg: Submit) -> None:
    # UDL sits right before the user data: find it from the decoded fields' sizes.
    smsc_len = raw[0] + 1
    da_octets = (raw[smsc_len + 2] + 1) // 2
    pos = smsc_len + 2 + 2 + da_octets + 2 + (1 if msg.validity is not None else 0)
    udl = raw[pos]
    if msg.encoding == "gsm7":
        assert udl <= 160
        assert len(raw) - pos - 1 == (udl * 7 + 7) // 8
    else:
        assert udl <= 140 and udl % 2 == 0 or msg.udh is not None
        assert len(raw) - pos - 1 == udl <= 140


@fast
@given(text=texts, bits=st.sampled_from([8, 16]),
       national=st.sampled_from([(), ("turkish", "spanish", "portuguese"), NATIONAL_LANGUAGES]),
       ref=st.integers(0, 255))
@example(text="😀" * 36, bits=8, national=(), ref=0)
@example(text="a" * 152 + "€" * 3, bits=8, national=(), ref=0)
def test_submit_round_trip(text: str, bits: int, national: tuple[str, ...], ref: int) -> None:
    try:
        p = plan(text, concat_ref_bits=bits, national_languages=national)
    except PduError:
        assert "\ud800" <= max(text, default="a")  # only surrogates may be refused here
        return
    pdus = encode_submit("+15550100", text, concat_ref=ref, concat_ref_bits=bits,
                         national_languages=national, validity=3600)
    assert len(pdus) == p.total
    decoded = []
    for pdu in pdus:
        raw = bytes.fromhex(pdu.hex)
        assert pdu.tpdu_length == len(raw) - 1
        msg = decode(pdu.hex)
        assert isinstance(msg, Submit)
        assert msg.text == pdu.text
        assert msg.encoding == p.encoding
        _ud_limits(raw, msg)
        if p.total > 1:
            assert msg.concat == (ref, p.total, pdu.part)
            assert msg.udh is not None and msg.udh.concat_ref_bits == bits
        else:
            assert msg.concat is None
        decoded.append(msg)
    decoded.sort(key=lambda m: m.concat[2] if m.concat else 0)
    assert "".join(m.text for m in decoded) == p.text
    assert all(u <= p.unit_limit for u in p.units_per_part)
    if not p.replacements:
        assert p.text == text


@fast
@given(text=texts, bits=st.sampled_from([8, 16]))
def test_deliver_round_trip(text: str, bits: int) -> None:
    try:
        pdus = encode_deliver("Shop", text, concat_ref=65535 if bits == 16 else 255,
                              concat_ref_bits=bits)
    except PduError:
        return
    assert "".join(decode(p).text for p in pdus) == text


# --- decoder fuzzing: only PduError may escape ---------------------------------------------

_SEEDS = [
    "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
    "0011000B916407281553F80008FF0A004800690020D83DDE00",
    "005100098156355476F80000AA14050003880303C2A066D8CD02B5F3A0F9DB0D",
    "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
    "0791538375000075061805810531F1019082416500400190824165004000",
    "0001000B914356143254F6001006E8721E947F03",
    encode_deliver("+123", "x" * 200, concat_ref_bits=16)[0],
    encode_submit("+90555", "ğüşıöç" * 30, national_languages=["turkish"])[0].hex,
    encode_submit("+91555", "नमस्ते दुनिया " * 20, national_languages=["hindi"])[0].hex,
]


def _decode_only_pdu_error(pdu: bytes, has_smsc: bool) -> None:
    try:
        decode(pdu.hex(), has_smsc=has_smsc)
    except PduError as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None)
@given(pdu=st.binary(max_size=200), has_smsc=st.booleans())
def test_decode_random_bytes(pdu: bytes, has_smsc: bool) -> None:
    _decode_only_pdu_error(pdu, has_smsc)


@settings(max_examples=600, deadline=None)
@given(seed=st.sampled_from(_SEEDS), data=st.data(), has_smsc=st.booleans())
def test_decode_mutated_pdus(seed: str, data: st.DataObject, has_smsc: bool) -> None:
    raw = bytearray.fromhex(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[i:]
        else:
            raw.insert(i, data.draw(st.integers(0, 255)))
    _decode_only_pdu_error(bytes(raw), has_smsc)


def test_decode_rejects_non_hex_text() -> None:
    for bad in ["00 1", "0g", "ééé", "\u0660\u0661"]:
        try:
            decode(bad)
        except PduError:
            continue
        raise AssertionError(f"{bad!r} decoded")


def test_mutations_smoke_with_fixed_seed() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        raw = bytearray.fromhex(rng.choice(_SEEDS))
        for _ in range(rng.randint(1, 3)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        _decode_only_pdu_error(bytes(raw), rng.random() < 0.8)
