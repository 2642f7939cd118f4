"""Segment planning: which encoding, which shift table, and where each part ends.

The planner picks the cheapest encoding that carries the text: GSM-7 if every character is in
the default alphabet (after optional look-alike replacements), a national language shift table
if asked for and it saves parts, UCS-2 otherwise. Parts never end on a lone escape or half a
surrogate pair, and avoid splitting a grapheme cluster (flag, skin-tone or ZWJ emoji, letter +
combining mark) when moving it whole to the next part costs little.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from appliance.pdu.errors import PduError
from appliance.pdu.gsm7 import DEFAULT, ESC, LOCKING_TABLES, Charset, charset
from appliance.pdu.ucs2 import ucs2_encode
from appliance.pdu.udh import udh_size

__all__ = ["MAX_PARTS", "Plan", "SMART_REPLACEMENTS", "plan"]

MAX_PARTS = 255
_MAX_CHARS = MAX_PARTS * 160  # no encoding carries more characters than this in 255 parts

#: Look-alikes replaced by GSM-7 characters when ``smart_encoding`` is on.
SMART_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′‵ʹʼ´`‹›", "'"),
    **dict.fromkeys("“”„‟″‶«»", '"'),
    **dict.fromkeys("‐‑‒–—―−﹘﹣－", "-"),
    "…": "...",
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                    "\u200a\u202f\u205f\u3000\t", " "),
    **dict.fromkeys("\u200b\u00ad\u2060\ufeff", ""),  # invisible: zero-width, soft hyphen
    "ˆ": "^",
    "˜": "~",
    "¦": "|",
}
_SMART_MAP = str.maketrans(SMART_REPLACEMENTS)
_SMART_KEYS = frozenset(SMART_REPLACEMENTS)
_SMART_RE = re.compile("|".join(map(re.escape, SMART_REPLACEMENTS)))

_NATIONAL_OPTIONS: tuple[tuple[str | None, str | None], ...] = tuple(
    option
    for language in ("turkish", "spanish", "portuguese")
    for option in (
        (None, language),
        *(((language, None), (language, language)) if language in LOCKING_TABLES else ()),
    )
)


@dataclass(frozen=True)
class Plan:
    """How a text is cut into SMS parts.

    ``units_per_part`` counts septets (escapes included) for GSM-7 and UTF-16 units for
    UCS-2; ``chars_left`` is how many units still fit in the last part; ``text`` is what is
    actually sent (after ``replacements``, each ``(original, replacement)``).
    """

    encoding: str
    shift_table: str | None
    parts: tuple[str, ...]
    units_per_part: tuple[int, ...]
    chars_left: int
    replacements: tuple[tuple[str, str], ...]
    text: str
    unit_limit: int
    concat_ref_bits: int = 8
    locking_shift: str | None = None
    single_shift: str | None = None

    @property
    def total(self) -> int:
        """Number of parts."""
        return len(self.parts)

    @property
    def multipart(self) -> bool:
        return len(self.parts) > 1


def _gsm7_limit(udh_octets: int) -> int:
    return 160 - (udh_octets * 8 + 6) // 7


def _ucs2_limit(udh_octets: int) -> int:
    return (140 - udh_octets) // 2


# Units per part, keyed by (multipart, concat_ref_bits, number of shift-table IEs).
_GSM7_LIMITS = {
    (multi, bits, shifts): _gsm7_limit(
        udh_size(concat=multi, concat_ref_bits=bits, shifts=shifts)
    )
    for multi in (False, True)
    for bits in (8, 16)
    for shifts in (0, 1, 2)
}
_UCS2_LIMITS = {bits: _ucs2_limit(udh_size(concat=True, concat_ref_bits=bits, shifts=0))
                for bits in (8, 16)}


def _too_many(needed: int) -> PduError:
    return PduError(f"text needs {needed} parts; an SMS can have at most {MAX_PARTS}")


def _plan_gsm7(
    text: str,
    cs: Charset,
    locking: str | None,
    single: str | None,
    replacements: tuple[tuple[str, str], ...],
    bits: int,
) -> tuple[Plan, tuple[bytes, ...]]:
    # Callers have checked that every character is in ``cs``.
    septets = text.translate(cs.encode_map).encode("latin-1")
    shifts = (locking is not None) + (single is not None)
    n = len(septets)
    limit = _GSM7_LIMITS[False, bits, shifts]
    if n <= limit:
        chunks: tuple[bytes, ...] = (septets,)
        parts: tuple[str, ...] = (text,)
    else:
        limit = _GSM7_LIMITS[True, bits, shifts]
        if n > MAX_PARTS * limit:
            raise _too_many(-(-n // limit))
        cut: list[bytes] = []
        pos = 0
        while pos < n:
            end = pos + limit
            if end < n and septets[end - 1] == ESC:
                end -= 1  # never leave the escape of a pair at the end of a part
            cut.append(septets[pos:end])
            pos = end
        if len(cut) > MAX_PARTS:
            raise _too_many(len(cut))
        chunks = tuple(cut)
        if ESC in septets:
            parts = tuple(cs.decode(c) for c in chunks)
        else:  # one character per septet: slice the text itself
            offsets = range(0, n, limit)
            parts = tuple(text[i : i + limit] for i in offsets)
    units = tuple(len(c) for c in chunks)
    shift_table = locking or single
    result = Plan(
        "gsm7", shift_table, parts, units, limit - units[-1], replacements, text, limit,
        bits, locking, single,
    )
    return result, chunks


_extender_cache: dict[str, bool] = {}
_extender_re: re.Pattern[str] | None = None


def _extender_pattern() -> re.Pattern[str]:
    """A regex matching any BMP character that attaches to the one before it (built once).

    BMP only: sre then compiles the class to a bitmap, O(1) per character; a class with
    astral ranges would be scanned range by range."""
    global _extender_re
    if _extender_re is None:
        ranges: list[tuple[int, int]] = []
        for o in range(0x300, 0x10000):
            if unicodedata.category(chr(o)) in ("Mn", "Me", "Mc"):
                if ranges and ranges[-1][1] == o - 1:
                    ranges[-1] = (ranges[-1][0], o)
                else:
                    ranges.append((o, o))
        ranges += [(0x200D, 0x200D), (0xFE00, 0xFE0F)]
        body = "".join(
            re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
            for a, b in ranges
        )
        _extender_re = re.compile(f"[{body}]")
    return _extender_re


def _is_extender(ch: str) -> bool:
    """True for characters that attach to the one before (combining, ZWJ, modifiers...)."""
    hit = _extender_cache.get(ch)
    if hit is None:
        o = ord(ch)
        hit = (
            unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or o == 0x200D
            or 0xFE00 <= o <= 0xFE0F  # variation selectors
            or 0x1F3FB <= o <= 0x1F3FF  # skin tones
            or 0xE0020 <= o <= 0xE007F  # tags (subdivision flags)
            or 0xE0100 <= o <= 0xE01EF
            or 0x1F1E6 <= o <= 0x1F1FF  # regional indicators: paired in _clusters
        )
        if len(_extender_cache) < 65536:
            _extender_cache[ch] = hit
    return hit


def _clusters(text: str) -> list[str]:
    """Approximate extended grapheme clusters (UAX #29 rules that matter for SMS)."""
    out: list[str] = []
    cur: list[str] = []
    prev_zwj = False
    ri_run = 0
    for ch in text:
        o = ord(ch)
        is_ri = 0x1F1E6 <= o <= 0x1F1FF
        if cur and (
            prev_zwj
            or (ri_run % 2 == 1 if is_ri else _is_extender(ch))
        ):
            cur.append(ch)
        else:
            if cur:
                out.append("".join(cur))
            cur = [ch]
            ri_run = 0
        ri_run = ri_run + 1 if is_ri else 0
        prev_zwj = o == 0x200D
    if cur:
        out.append("".join(cur))
    return out



def _units(s: str) -> int:
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


def _split_clusters(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    used = 0
    nearby = limit // 3  # a cluster this small moves whole to the next part
    for cluster in _clusters(text):
        cost = _units(cluster)
        if used + cost <= limit:
            cur.append(cluster)
            used += cost
        elif cost <= nearby:
            parts.append("".join(cur))
            cur, used = [cluster], cost
        else:  # oversized cluster (e.g. stacked combining marks): cut between code points
            for ch in cluster:
                u = 2 if ord(ch) > 0xFFFF else 1
                if used + u > limit:
                    parts.append("".join(cur))
                    cur, used = [], 0
                cur.append(ch)
                used += u
        if len(parts) > MAX_PARTS:
            raise _too_many(len(parts))
    parts.append("".join(cur))
    return parts


def _plan_ucs2(text: str, bits: int) -> tuple[Plan, tuple[bytes, ...]]:
    data = ucs2_encode(text)
    n = len(data) >> 1
    limit = 70
    if n <= limit:
        payloads: tuple[bytes, ...] = (data,)
        parts: tuple[str, ...] = (text,)
    else:
        limit = _UCS2_LIMITS[bits]
        if n > MAX_PARTS * limit:
            raise _too_many(-(-n // limit))
        if n != len(text) or _extender_pattern().search(text):
            # Astral characters (emoji) or combining marks: split by grapheme cluster.
            parts = tuple(_split_clusters(text, limit))
            payloads = tuple(ucs2_encode(p) for p in parts)
        else:  # one unit per character, no clusters: plain slicing
            step = limit * 2
            payloads = tuple(data[i : i + step] for i in range(0, len(data), step))
            parts = tuple(text[i : i + limit] for i in range(0, n, limit))
        if len(parts) > MAX_PARTS:
            raise _too_many(len(parts))
    units = tuple(len(p) >> 1 for p in payloads)
    result = Plan("ucs2", None, parts, units, limit - units[-1], (), text, limit, bits)
    return result, payloads


def make_plan(
    text: str,
    *,
    concat_ref_bits: int = 8,
    smart_encoding: bool = True,
    national_tables: bool = False,
) -> tuple[Plan, tuple[bytes, ...]]:
    """The plan and each part's payload: septets (one per byte) for GSM-7, UTF-16BE for UCS-2."""
    if not isinstance(text, str):
        raise PduError(f"text must be a string, not {type(text).__name__}")
    if concat_ref_bits not in (8, 16):
        raise PduError(f"concat_ref_bits must be 8 or 16, not {concat_ref_bits!r}")
    if len(text) > _MAX_CHARS:
        raise PduError(
            f"text of {len(text)} characters needs more than {MAX_PARTS} parts"
        )
    default_ok = DEFAULT.chars.issuperset(text)
    if default_ok and not (national_tables and not DEFAULT.extension_chars.isdisjoint(text)):
        return _plan_gsm7(text, DEFAULT, None, None, (), concat_ref_bits)
    sent, replacements = text, ()
    if smart_encoding and not default_ok and _SMART_RE.search(text):
        sent = text.translate(_SMART_MAP)
        replacements = tuple(
            (c, SMART_REPLACEMENTS[c]) for c in dict.fromkeys(text) if c in _SMART_KEYS
        )

    best: tuple[Plan, tuple[bytes, ...]]
    if default_ok:
        best = _plan_gsm7(text, DEFAULT, None, None, (), concat_ref_bits)
    else:
        best = _plan_ucs2(text, concat_ref_bits)
        if replacements and DEFAULT.chars.issuperset(sent):
            smart = _plan_gsm7(sent, DEFAULT, None, None, replacements, concat_ref_bits)
            if smart[0].total <= best[0].total:
                best = smart
    if national_tables:
        sent_chars = set(sent)
        for locking, single in _NATIONAL_OPTIONS:
            cs = charset(locking or "default", single or "default")
            if not cs.chars.issuperset(sent_chars):
                continue
            option = _plan_gsm7(sent, cs, locking, single, replacements, concat_ref_bits)
            if option[0].total < best[0].total:
                best = option
    return best


def plan(
    text: str,
    *,
    concat_ref_bits: int = 8,
    smart_encoding: bool = True,
    national_tables: bool = False,
) -> Plan:
    """Plan how ``text`` is sent: encoding, shift table, parts, units, replacements.

    ``concat_ref_bits`` (8 or 16) sizes the concatenation header of multipart messages.
    ``smart_encoding`` replaces look-alikes (curly quotes, dashes, ellipsis, odd spaces) by
    GSM-7 characters when that keeps the message out of UCS-2. ``national_tables`` lets the
    planner use the Turkish, Spanish or Portuguese shift tables when they save parts.
    PduError if the text is not a string, contains a lone surrogate or needs over 255 parts.
    """
    return make_plan(
        text,
        concat_ref_bits=concat_ref_bits,
        smart_encoding=smart_encoding,
        national_tables=national_tables,
    )[0]
