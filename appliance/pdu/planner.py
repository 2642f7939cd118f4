"""Segment planning: which encoding, which shift tables, and where each part ends.

The planner picks the cheapest encoding that carries the text: GSM-7 if every character is in
the default alphabet (after optional look-alike replacements), else UCS-2; and, among the
national languages it is given, a national locking-/single-shift table pairing only when that
takes fewer parts than both. The plan names the tables it used (:class:`ShiftTables`), so an
encoder given the same tables sends exactly the planned parts.

Parts never end on a lone escape or half a surrogate pair, so a text takes the least number
of parts an encoding allows (what splitting on UTF-16 units / septets without breaking a
pair gives). Within that number, a grapheme cluster (flag, skin-tone or ZWJ emoji, letter +
combining marks) moves whole to the next part whenever that does not cost a part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from appliance.pdu.errors import PduError, TooManyParts, UnencodableText, UnknownLanguage
from appliance.pdu.gsm7 import DEFAULT, ESC, Charset, charset
from appliance.pdu.national import LOCKING_SHIFT_TABLES, NATIONAL_LANGUAGES
from appliance.pdu.ucs2 import ucs2_encode
from appliance.pdu.udh import udh_size

__all__ = [
    "MAX_PARTS",
    "Plan",
    "SMART_REPLACEMENTS",
    "ShiftTables",
    "make_plan",
    "parse_languages",
    "plan",
]

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


@dataclass(frozen=True)
class ShiftTables:
    """The national tables a GSM-7 text is sent with; None means the default table.

    ``key`` is a short string form for storage (``"hindi/hindi"``, ``"-/spanish"``, ``""``
    for none); :meth:`from_key` reads it back.
    """

    locking: str | None = None
    single: str | None = None

    @property
    def national(self) -> bool:
        """True if either table is a national one."""
        return self.locking is not None or self.single is not None

    @property
    def count(self) -> int:
        """How many UDH shift elements the tables take (0, 1 or 2)."""
        return (self.locking is not None) + (self.single is not None)

    @property
    def key(self) -> str:
        if not self.national:
            return ""
        return f"{self.locking or '-'}/{self.single or '-'}"

    @classmethod
    def from_key(cls, key: str) -> ShiftTables:
        """The tables for a :attr:`key`; UnknownLanguage or PduError if it names none."""
        if not key:
            return cls()
        locking, sep, single = key.partition("/")
        if not sep:
            raise PduError(f"shift tables key {key!r} is not 'locking/single'")
        tables = cls(None if locking == "-" else locking, None if single == "-" else single)
        charset(tables.locking or "default", tables.single or "default")  # validates the names
        return tables

    def describe(self) -> str:
        """"Hindi tables", "Spanish single-shift table", ...; "" for the default tables."""
        locking, single = self.locking, self.single
        if locking and locking == single:
            return f"{locking.capitalize()} tables"
        if locking and single:
            return (f"{locking.capitalize()} locking-shift and {single.capitalize()} "
                    "single-shift tables")
        if locking:
            return f"{locking.capitalize()} locking-shift table"
        if single:
            return f"{single.capitalize()} single-shift table"
        return ""


_NO_TABLES = ShiftTables()


@dataclass(frozen=True)
class Plan:
    """How a text is cut into SMS parts.

    ``units_per_part`` counts septets (escapes included) for GSM-7 and UTF-16 units for
    UCS-2; ``chars_left`` is how many units still fit in the last part; ``text`` is what is
    actually sent (after ``replacements``, each ``(original, replacement)``).
    ``locking_shift``/``single_shift`` name the national tables used (None: default), and
    ``default_parts`` is how many parts the text takes without them (GSM-7 default alphabet
    or UCS-2), equal to ``total`` when no national table is used.
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
    default_parts: int = 1

    @property
    def total(self) -> int:
        """Number of parts."""
        return len(self.parts)

    @property
    def multipart(self) -> bool:
        return len(self.parts) > 1

    @property
    def tables(self) -> ShiftTables:
        """The shift tables to give an encoder so it sends these very parts."""
        return ShiftTables(self.locking_shift, self.single_shift)

    @property
    def encoding_label(self) -> str:
        """"GSM-7", "GSM-7, Hindi tables" or "UCS-2"."""
        if self.encoding == "ucs2":
            return "UCS-2"
        described = self.tables.describe()
        return f"GSM-7, {described}" if described else "GSM-7"

    @property
    def summary(self) -> str:
        """E.g. "GSM-7, Hindi tables: 2 parts instead of 4" or "UCS-2: 1 part"."""
        text = f"{self.encoding_label}: {_parts(self.total)}"
        if self.total != self.default_parts:
            text += f" instead of {self.default_parts}"
        return text


def _parts(n: int) -> str:
    return f"{n} part" + ("" if n == 1 else "s")


def parse_languages(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` checked and normalised (lower case, no repeats, in the given order).

    UnknownLanguage for a name that is not one of ``NATIONAL_LANGUAGES``.
    """
    if isinstance(names, str):
        raise PduError("national languages must be a list of names, not one string")
    out: list[str] = []
    for name in names:
        lowered = name.strip().lower() if isinstance(name, str) else name
        if lowered not in NATIONAL_LANGUAGES:
            raise UnknownLanguage(str(name))
        if lowered not in out:
            out.append(lowered)
    return tuple(out)


@cache
def _options(languages: tuple[str, ...]) -> tuple[ShiftTables, ...]:
    """Every pairing of the languages' tables, one shift element before two."""
    lockings = [None, *(name for name in languages if name in LOCKING_SHIFT_TABLES)]
    singles = [None, *languages]
    options = [ShiftTables(lock, single) for lock in lockings for single in singles]
    return tuple(sorted((o for o in options if o.national), key=lambda o: o.count))


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

# Per unit: 1 where a part may not start (after an escape; at a low surrogate's high byte).
_AFTER_ESC = bytes(1 if b == ESC else 0 for b in range(256))
_LOW_SURROGATE = bytes(1 if 0xDC <= b <= 0xDF else 0 for b in range(256))


@dataclass(frozen=True)
class _Option:
    """A way to send the text, counted but not yet cut."""

    encoding: str
    tables: ShiftTables
    text: str
    replacements: tuple[tuple[str, str], ...]
    payload: bytes  # septets (one per byte) for GSM-7, UTF-16BE for UCS-2
    glued: bytes  # per unit: 1 where a part may not start
    limit: int  # units per part (the single-part limit when total == 1)
    total: int
    cs: Charset | None


def _count(n: int, limit: int, glued: bytes, start: int = 0) -> int:
    """Parts needed for units ``start``–``n`` cut greedily without breaking a pair (the
    least number any cut gives)."""
    count, pos = 0, start
    while pos < n:
        end = pos + limit
        if end < n and glued[end]:
            end -= 1
        pos = end
        count += 1
    return count


def _gsm7_option(
    text: str,
    cs: Charset,
    tables: ShiftTables,
    replacements: tuple[tuple[str, str], ...],
    bits: int,
) -> _Option:
    # Callers have checked that every character is in ``cs``.
    septets = text.translate(cs.encode_map).encode("latin-1")
    n = len(septets)
    limit = _GSM7_LIMITS[False, bits, tables.count]
    glued = b""
    total = 1
    if n > limit:
        limit = _GSM7_LIMITS[True, bits, tables.count]
        glued = b"\x00" + septets[:-1].translate(_AFTER_ESC) if ESC in septets else bytes(n)
        total = _count(n, limit, glued)
    return _Option("gsm7", tables, text, replacements, septets, glued, limit, total, cs)


def _ucs2_option(text: str, bits: int) -> _Option:
    data = ucs2_encode(text)
    n = len(data) >> 1
    limit, glued, total = 70, b"", 1
    if n > limit:
        limit = _UCS2_LIMITS[bits]
        glued = data[0::2].translate(_LOW_SURROGATE)
        total = _count(n, limit, glued)
    return _Option("ucs2", _NO_TABLES, text, (), data, glued, limit, total, None)

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


def _cuts(n: int, limit: int, glued: bytes, starts: list[int]) -> list[int]:
    """Part boundaries (0 first, ``n`` last) for units with clusters starting at ``starts``.

    A cluster that does not fit moves whole to the next part only if the rest still fits in
    the least number of parts; otherwise (or if it alone is too big) it is cut greedily.
    """
    least = _count(n, limit, glued)
    cuts = [0]
    start = 0
    for k, u0 in enumerate(starts):
        u1 = starts[k + 1] if k + 1 < len(starts) else n
        if u1 - start <= limit:
            continue
        if u0 > start and len(cuts) + _count(n, limit, glued, u0) <= least:
            cuts.append(u0)
            start = u0
        while u1 - start > limit:
            end = start + limit
            if glued[end]:
                end -= 1
            cuts.append(end)
            start = end
    cuts.append(n)
    return cuts


def _greedy_cuts(n: int, limit: int, glued: bytes) -> list[int]:
    cuts, pos = [0], 0
    while pos < n:
        end = pos + limit
        if end < n and glued[end]:
            end -= 1
        cuts.append(end)
        pos = end
    cuts[-1] = n
    return cuts


def _build(option: _Option, bits: int, default_parts: int) -> tuple[Plan, tuple[bytes, ...]]:
    """The plan and each part's payload for a counted option."""
    if option.total > MAX_PARTS:
        raise TooManyParts(option.total)
    text, data, limit = option.text, option.payload, option.limit
    gsm7 = option.encoding == "gsm7"
    width = 1 if gsm7 else 2  # octets per unit
    n = len(data) // width
    if option.total == 1:
        payloads: tuple[bytes, ...] = (data,)
        parts: tuple[str, ...] = (text,)
    else:
        one_per_char = n == len(text)
        if (not one_per_char and not gsm7) or _extender_pattern().search(text):
            # Astral characters (emoji) or combining marks: keep clusters whole if free.
            starts, pos = [], 0
            encode_map = option.cs.encode_map if option.cs is not None else None
            for cluster in _clusters(text):
                starts.append(pos)
                pos += len(cluster.translate(encode_map)) if encode_map else _units(cluster)
            cuts = _cuts(n, limit, option.glued, starts)
        else:
            cuts = _greedy_cuts(n, limit, option.glued)
        payloads = tuple(data[a * width : b * width] for a, b in zip(cuts, cuts[1:]))
        if one_per_char:
            parts = tuple(text[a:b] for a, b in zip(cuts, cuts[1:]))
        elif gsm7:
            assert option.cs is not None
            parts = tuple(option.cs.decode(p) for p in payloads)
        else:
            parts = tuple(p.decode("utf-16-be") for p in payloads)
    units = tuple(len(p) // width for p in payloads)
    tables = option.tables
    result = Plan(
        option.encoding, tables.locking or tables.single, parts, units, limit - units[-1],
        option.replacements, text, limit, bits, tables.locking, tables.single,
        default_parts,
    )
    return result, payloads


def make_plan(
    text: str,
    *,
    concat_ref_bits: int = 8,
    smart_encoding: bool = True,
    national_languages: Iterable[str] = (),
    shift_tables: ShiftTables | None = None,
) -> tuple[Plan, tuple[bytes, ...]]:
    """:func:`plan`, and each part's payload: septets (one per byte) for GSM-7, UTF-16BE for
    UCS-2."""
    if not isinstance(text, str):
        raise PduError(f"text must be a string, not {type(text).__name__}")
    if concat_ref_bits not in (8, 16):
        raise PduError(f"concat_ref_bits must be 8 or 16, not {concat_ref_bits!r}")
    if len(text) > _MAX_CHARS:
        raise TooManyParts(-(-len(text) // _GSM7_LIMITS[True, 8, 0]), exact=False)
    bits = concat_ref_bits
    languages = _normalise(national_languages)
    forced = shift_tables if shift_tables is not None and shift_tables.national else None
    if forced is not None:
        languages = ()
    default_ok = DEFAULT.chars.issuperset(text)
    if forced is None and default_ok and (
        not languages or DEFAULT.extension_chars.isdisjoint(text)
    ):  # one septet per character: no national table can do better
        option = _gsm7_option(text, DEFAULT, _NO_TABLES, (), bits)
        return _build(option, bits, option.total)
    sent, replacements = text, ()
    if smart_encoding and not default_ok and _SMART_RE.search(text):
        sent = text.translate(_SMART_MAP)
        replacements = tuple(
            (c, SMART_REPLACEMENTS[c]) for c in dict.fromkeys(text) if c in _SMART_KEYS
        )

    if default_ok:
        best = _gsm7_option(text, DEFAULT, _NO_TABLES, (), bits)
    else:
        best = _ucs2_option(text, bits)
        if replacements and DEFAULT.chars.issuperset(sent):
            smart = _gsm7_option(sent, DEFAULT, _NO_TABLES, replacements, bits)
            if smart.total <= best.total:
                best = smart
    default_parts = best.total
    if forced is not None:
        cs = charset(forced.locking or "default", forced.single or "default")
        for candidate, swaps in ((text, ()), (sent, replacements)):
            if cs.chars.issuperset(candidate):
                return _build(_gsm7_option(candidate, cs, forced, swaps, bits), bits, default_parts)
        raise UnencodableText("".join(sorted(set(sent) - cs.chars)), cs.label)
    if languages:
        chars = {"text": set(text), "sent": set(sent)}
        for tables in _options(languages):
            cs = charset(tables.locking or "default", tables.single or "default")
            if cs.chars.issuperset(chars["text"]):
                option = _gsm7_option(text, cs, tables, (), bits)
            elif sent is not text and cs.chars.issuperset(chars["sent"]):
                option = _gsm7_option(sent, cs, tables, replacements, bits)
            else:
                continue
            if option.total < best.total:
                best = option
    return _build(best, bits, default_parts)


def _normalise(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, tuple) and all(n in NATIONAL_LANGUAGES for n in names):
        return names  # already normalised: the common case, checked cheaply
    return parse_languages(names)


def plan(
    text: str,
    *,
    concat_ref_bits: int = 8,
    smart_encoding: bool = True,
    national_languages: Iterable[str] = (),
    shift_tables: ShiftTables | None = None,
) -> Plan:
    """Plan how ``text`` is sent: encoding, shift tables, parts, units, replacements.

    ``concat_ref_bits`` (8 or 16) sizes the concatenation header of multipart messages.
    ``smart_encoding`` replaces look-alikes (curly quotes, dashes, ellipsis, odd spaces) by
    GSM-7 characters when that keeps the message out of UCS-2. ``national_languages`` (names
    from ``NATIONAL_LANGUAGES``, e.g. ``("turkish",)``) lets the planner use those
    languages' 23.038 shift tables when they take fewer parts than the default alphabet and
    UCS-2; the plan's ``tables`` say which it used. ``shift_tables`` instead forces given
    tables (an encoder re-creating a stored plan); UnencodableText if the text does not fit.
    PduError if the text is not a string, contains a lone surrogate or needs over 255 parts
    (TooManyParts), UnknownLanguage for a name that is not a national language.
    """
    return make_plan(
        text,
        concat_ref_bits=concat_ref_bits,
        smart_encoding=smart_encoding,
        national_languages=national_languages,
        shift_tables=shift_tables,
    )[0]
