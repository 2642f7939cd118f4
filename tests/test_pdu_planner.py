"""Segment planning: limits, split rules, smart encoding, national shift tables."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from appliance.pdu import PduError, Submit, decode, encode_submit, plan

OLD_THREE = ("turkish", "spanish", "portuguese")


@pytest.mark.parametrize(
    ("text", "bits", "encoding", "total", "limit", "left"),
    [
        ("", 8, "gsm7", 1, 160, 160),
        ("a" * 160, 8, "gsm7", 1, 160, 0),
        ("a" * 161, 8, "gsm7", 2, 153, 145),
        ("a" * 161, 16, "gsm7", 2, 152, 143),
        ("ж" * 70, 8, "ucs2", 1, 70, 0),
        ("ж" * 71, 8, "ucs2", 2, 67, 63),
        ("ж" * 71, 16, "ucs2", 2, 66, 61),
        ("€" * 80, 8, "gsm7", 1, 160, 0),
        ("€" * 81, 8, "gsm7", 2, 153, 153 - 10),  # 76 pairs (152) + 5 pairs
    ],
)
def test_limits(text: str, bits: int, encoding: str, total: int, limit: int, left: int) -> None:
    p = plan(text, concat_ref_bits=bits)
    assert (p.encoding, p.total, p.unit_limit, p.chars_left) == (encoding, total, limit, left)
    assert "".join(p.parts) == text
    assert all(u <= limit for u in p.units_per_part)


def test_escape_pair_is_never_split() -> None:
    text = "a" * 152 + "€" + "b" * 10
    p = plan(text)
    assert p.parts[0] == "a" * 152  # 152 + 2 would overflow 153: the pair moves on
    assert p.units_per_part == (152, 12)
    assert p.parts[1].startswith("€")


def test_emoji_35_fit_36_need_33_plus_3() -> None:
    assert plan("😀" * 35).total == 1
    p = plan("😀" * 36)
    assert p.encoding == "ucs2"
    assert [len(part) for part in p.parts] == [33, 3]
    assert p.units_per_part == (66, 6)


def test_surrogate_pair_is_never_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10
    p = plan(text)
    assert p.parts[0] == "ж" * 66
    assert p.parts[1][0] == "😀"


@pytest.mark.parametrize(
    "cluster",
    [
        "🇸🇪",  # flag: two regional indicators
        "👍🏽",  # skin tone
        "👨‍👩‍👧‍👦",  # ZWJ family
        "e\u0301",  # combining acute
        "1\ufe0f\u20e3",  # keycap
    ],
)
def test_grapheme_cluster_moves_whole_to_next_part(cluster: str) -> None:
    units = len(cluster.encode("utf-16-be")) // 2
    text = "ж" * (67 - units + 1) + cluster + "ж" * 5
    p = plan(text)
    assert p.total == 2
    assert p.parts[1].startswith(cluster)
    assert "".join(p.parts) == text


def test_flags_pair_up_from_the_start_of_a_run() -> None:
    text = "ж" * 63 + "🇸🇪🇫🇮" + "x"
    p = plan(text)  # 63 + 4 = 67 fits the Swedish flag; the Finnish one moves whole
    assert p.parts[0].endswith("🇸🇪") and p.parts[1].startswith("🇫🇮")


def test_oversized_cluster_is_cut_between_code_points() -> None:
    text = "a" + "\u0301" * 200  # one abusive cluster of 201 units
    p = plan(text)
    assert p.encoding == "ucs2"
    assert "".join(p.parts) == text
    assert all(u <= 67 for u in p.units_per_part)
    assert p.units_per_part[0] == 67


def test_smart_encoding_keeps_gsm7_and_reports_replacements() -> None:
    p = plan("It’s “fine” — really… ok’")
    assert p.encoding == "gsm7"
    assert p.text == "It's \"fine\" - really... ok'"
    assert p.replacements == (("’", "'"), ("“", '"'), ("”", '"'), ("—", "-"), ("…", "..."))


def test_smart_encoding_off_means_ucs2() -> None:
    p = plan("It’s fine", smart_encoding=False)
    assert (p.encoding, p.replacements, p.text) == ("ucs2", (), "It’s fine")


def test_smart_encoding_is_not_applied_when_ucs2_is_needed_anyway() -> None:
    p = plan("Привет “друг”")
    assert (p.encoding, p.replacements, p.text) == ("ucs2", (), "Привет “друг”")


def test_no_break_space_and_invisible_characters() -> None:
    p = plan("10\u00a0km\u200b")
    assert (p.encoding, p.text) == ("gsm7", "10 km")
    assert ("\u00a0", " ") in p.replacements and ("\u200b", "") in p.replacements


def test_lowercase_c_cedilla_is_ucs2_without_national_tables() -> None:
    assert plan("ç").encoding == "ucs2"
    assert plan("Ç").encoding == "gsm7"


def test_turkish_single_shift_saves_parts() -> None:
    text = "Şişli'de buluşalım, ğ ı İ ş ç. " * 4  # 128 characters
    assert plan(text).encoding == "ucs2"
    p = plan(text, national_languages=OLD_THREE)
    assert p.encoding == "gsm7" and p.shift_table == "turkish"
    assert p.total < plan(text).total
    pdus = encode_submit("+905321234567", text, national_languages=OLD_THREE)
    assert len(pdus) == p.total
    joined = "".join(decode(x.hex).text for x in pdus)
    assert joined == text


def test_spanish_single_shift_udh_is_sent() -> None:
    text = "Mañana llegará el camión a Córdoba, así que " * 3
    p = plan(text, national_languages=OLD_THREE)
    assert p.shift_table == "spanish" and p.single_shift == "spanish" and p.locking_shift is None
    (pdu,) = encode_submit("+34600000000", text, national_languages=OLD_THREE)
    msg = decode(pdu.hex)
    assert isinstance(msg, Submit)
    assert msg.udh is not None and (0x24, b"\x02") in msg.udh.elements
    assert msg.text == text


def test_portuguese_locking_shift_round_trip() -> None:
    text = "Ação: você irá à reunião às três horas, não é? " * 5
    p = plan(text, national_languages=OLD_THREE)
    assert p.shift_table == "portuguese"
    assert p.total < plan(text).total
    pdus = encode_submit("+351912345678", text, national_languages=OLD_THREE, concat_ref=7)
    assert "".join(decode(x.hex).text for x in pdus) == text


def test_national_table_not_used_when_it_saves_nothing() -> None:
    assert plan("ç", national_languages=OLD_THREE).encoding == "ucs2"  # both fit one part
    assert plan("plain text", national_languages=OLD_THREE).shift_table is None


def test_at_most_255_parts() -> None:
    assert plan("a" * 153 * 255).total == 255
    with pytest.raises(PduError, match="255"):
        plan("a" * (153 * 255 + 1))
    with pytest.raises(PduError, match="255"):
        plan("ж" * (67 * 255 + 1))
    with pytest.raises(PduError, match="255"):
        encode_submit("+1555", "€" * 20000)


def test_bad_arguments() -> None:
    with pytest.raises(PduError, match="8 or 16"):
        plan("x", concat_ref_bits=12)
    with pytest.raises(PduError, match="surrogate"):
        plan("a\ud800b")
    with pytest.raises(PduError, match="string"):
        plan(b"bytes")  # type: ignore[arg-type]


# --- keeping graphemes whole never costs a part -----------------------------------------------


def _surrogate_safe_parts(text: str) -> int:
    """Parts of libgammu's split: UTF-16 units, 70 in one part or 67 per part, a surrogate
    pair never split."""
    data = text.encode("utf-16-be")
    n = len(data) // 2
    if n <= 70:
        return 1
    count = pos = 0
    while pos < n:
        end = min(pos + 67, n)
        if end < n and 0xDC <= data[2 * end] <= 0xDF:  # a low surrogate: keep its pair whole
            end -= 1
        pos, count = end, count + 1
    return count


_EMOJI_PIECES = [
    "😀", "🎉", "👍🏽", "👍🏿", "🇸🇪", "🇫🇮", "🇰🇪", "👨‍👩‍👧‍👦", "👩‍❤️‍👨", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "1\ufe0f\u20e3", "❤️", "ж", "я", " ", "a", "e\u0301", "é",
]


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.sampled_from(_EMOJI_PIECES), min_size=20, max_size=400))
@example(pieces=["ж"] * 65 + ["👍🏽"] + ["ж"] * 65)
def test_graphemes_kept_whole_never_cost_a_part(pieces: list[str]) -> None:
    text = "ж" + "".join(pieces)  # UCS-2 whatever was drawn
    p = plan(text)
    assert p.encoding == "ucs2"
    assert p.total == _surrogate_safe_parts(text)
    assert "".join(p.parts) == text
    assert all(u <= p.unit_limit for u in p.units_per_part)


def test_a_skin_tone_is_split_off_when_moving_the_emoji_would_cost_a_part() -> None:
    text = "ж" * 65 + "👍🏽" + "ж" * 65  # 134 units: two full parts of 67
    p = plan(text)
    assert p.total == 2 and p.units_per_part == (67, 67)
    assert p.parts[0].endswith("👍") and p.parts[1].startswith("🏽")


def test_a_cluster_still_moves_whole_when_that_costs_nothing() -> None:
    text = "ж" * 65 + "👍🏽" + "ж" * 10
    p = plan(text)
    assert p.units_per_part == (65, 14) and p.parts[1].startswith("👍🏽")


def test_later_clusters_move_whole_once_an_earlier_one_was_cut() -> None:
    text = "ж" * 65 + "👍🏽" + "ж" * 62 + "🇸🇪" + "ж" * 3  # 138 units: 3 parts at least
    p = plan(text)
    assert p.total == 3
    assert p.parts[1].startswith("👍🏽") and p.parts[2].startswith("🇸🇪")


def test_combining_marks_stay_with_their_letter_in_national_gsm7() -> None:
    text = "क" * 148 + "कि" + "क" * 10  # 160 septets: 2 parts with the Hindi locking table
    p = plan(text, national_languages=["hindi"])
    assert (p.encoding, p.locking_shift, p.unit_limit, p.total) == ("gsm7", "hindi", 149, 2)
    assert p.parts[1].startswith("कि") and p.units_per_part == (148, 12)
    tight = "क" * 148 + "कि" + "क" * 148  # 298 = 2 × 149: moving it would take a third part
    q = plan(tight, national_languages=["hindi"])
    assert q.units_per_part == (149, 149) and q.parts[1].startswith("\u093f")
