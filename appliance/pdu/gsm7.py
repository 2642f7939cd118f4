"""GSM 03.38 7-bit alphabet: default and extension tables, charsets with the national shift
tables of :mod:`appliance.pdu.national`, septet packing.

Septets are handled as ``bytes`` (one septet per byte) so that mapping and packing run in C:
``str.translate`` maps text to septets, and packing compresses 8-bit lanes into 7-bit fields
with a handful of big-integer mask-and-shift steps (no per-character Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from appliance.pdu.errors import PduError, UnencodableText, UnknownLanguage
from appliance.pdu.national import LANGUAGE_IDS, LANGUAGES, LOCKING_SHIFT_TABLES
from appliance.pdu.national import SINGLE_SHIFT_TABLES as _NATIONAL_SINGLE

__all__ = [
    "Charset",
    "DEFAULT",
    "ESC",
    "LANGUAGE_IDS",
    "LANGUAGES",
    "LOCKING_TABLES",
    "SINGLE_SHIFT_TABLES",
    "charset",
    "decode_septets",
    "gsm7_pack",
    "gsm7_unpack",
    "pack_septets",
    "unpack_septets",
]

ESC = 0x1B
_ESC_CHAR = "\x1b"

# 23.038 §6.2.1: the default alphabet; position 0x1B is the escape to the extension table.
_DEFAULT_TABLE: tuple[str | None, ...] = tuple(
    None if i == ESC else c
    for i, c in enumerate(
        "@£$¥èéùìòÇ\nØø\rÅå"
        "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
        " !\"#¤%&'()*+,-./"
        "0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNO"
        "PQRSTUVWXYZÄÖÑÜ§"
        "¿abcdefghijklmno"
        "pqrstuvwxyzäöñüà"
    )
)
# 23.038 §6.2.1.1: the default extension table.
_DEFAULT_EXTENSION = {
    0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}

#: Locking-shift (main) tables by name, ``"default"`` included: 128 entries, None where a
#: table has no character (and at the escape 0x1B).
LOCKING_TABLES: dict[str, tuple[str | None, ...]] = {
    "default": _DEFAULT_TABLE, **LOCKING_SHIFT_TABLES
}
#: Single-shift (extension) tables by name, ``"default"`` included: code after ESC → character.
SINGLE_SHIFT_TABLES: dict[str, dict[int, str]] = {
    "default": _DEFAULT_EXTENSION, **_NATIONAL_SINGLE
}


@dataclass(frozen=True, eq=False)
class Charset:
    """One pairing of a locking-shift table and a single-shift (extension) table."""

    locking: str
    single: str
    chars: frozenset[str]  # every encodable character
    extension_chars: frozenset[str]  # characters that cost an escape (2 septets)
    encode_map: dict[int, str]  # str.translate table: character -> septet string
    decode_map: dict[int, str]  # str.translate table: septet (as latin-1 char) -> character
    extension_decode: dict[int, str]  # septet after ESC -> character

    @property
    def label(self) -> str:
        """What the tables are called in messages, e.g. "the GSM 7-bit alphabet"."""
        if self.locking == self.single == "default":
            return "the GSM 7-bit alphabet"
        if self.locking == self.single:
            return f"the GSM 7-bit {self.locking} tables"
        return f"the GSM 7-bit {self.locking} locking-shift and {self.single} single-shift tables"

    def encode(self, text: str) -> bytes:
        """Septets (one per byte, escapes included) for ``text``; UnencodableText if it can't."""
        if not self.chars.issuperset(text):
            bad = "".join(sorted(set(text) - self.chars))
            raise UnencodableText(bad, self.label)
        return text.translate(self.encode_map).encode("latin-1")

    def decode(self, septets: bytes) -> str:
        """Text for unpacked septets; lenient (an unknown escape code falls back)."""
        return decode_septets(septets, self)


@cache
def charset(locking: str = "default", single: str = "default") -> Charset:
    """The :class:`Charset` for a pair of table names (``"default"`` or a language).

    UnknownLanguage if either name has no table of its kind (Spanish has no locking table).
    """
    table = LOCKING_TABLES.get(locking)
    if table is None:
        raise UnknownLanguage(locking, "locking" if locking in LANGUAGE_IDS else None)
    extension = SINGLE_SHIFT_TABLES.get(single)
    if extension is None:
        raise UnknownLanguage(single)
    encode_map: dict[int, str] = {}
    for code in sorted(extension, reverse=True):  # a character listed twice: the lower code
        encode_map[ord(extension[code])] = _ESC_CHAR + chr(code)
    for code in range(127, -1, -1):
        char = table[code]
        if char is not None:
            encode_map[ord(char)] = chr(code)  # the locking table wins: it costs 1
    chars = frozenset(chr(c) for c in encode_map)
    extension_chars = frozenset(chr(c) for c, s in encode_map.items() if len(s) == 2)
    # A code with no character shows a space, as for the reserved ESC ESC (Android does so too).
    decode_map = {code: table[code] or " " for code in range(128) if code != ESC}
    return Charset(
        locking, single, chars, extension_chars, encode_map, decode_map, dict(extension)
    )


DEFAULT = charset()


def decode_septets(septets: bytes, cs: Charset = DEFAULT) -> str:
    """Map unpacked septets to text, resolving escape pairs.

    An escape followed by a code the extension table lacks shows the locking-table character
    (23.038 §6.2.1.1); ESC ESC shows a space; a trailing lone escape is dropped.
    """
    if ESC not in septets:
        return septets.decode("latin-1").translate(cs.decode_map)
    pieces = septets.split(b"\x1b")
    out = [pieces[0].decode("latin-1").translate(cs.decode_map)]
    ext = cs.extension_decode
    i, n = 1, len(pieces)
    while i < n:
        piece = pieces[i]
        if piece:
            code = piece[0]
            out.append(ext.get(code) or cs.decode_map.get(code, "?"))
            out.append(piece[1:].decode("latin-1").translate(cs.decode_map))
            i += 1
        elif i == n - 1:
            break  # lone escape at the end
        else:
            out.append(" ")  # ESC ESC: reserved for a further extension table
            out.append(pieces[i + 1].decode("latin-1").translate(cs.decode_map))
            i += 2
    return "".join(out)


# --- packing -------------------------------------------------------------------------------
# Compressing n septets held in 8-bit lanes into 7-bit fields: at step k, pairs of lanes of
# width 8·2^k holding fields of 7·2^k bits merge into one lane; the upper field moves down by
# 2^k bits. ceil(log2 n) steps, each a few big-integer operations over the whole message.

_CHUNK = 1024  # septets per packing chunk (a multiple of 8, so chunks are byte-aligned)
_LEVELS = 10  # 2**10 == _CHUNK


def _build_masks() -> list[tuple[int, int, int]]:
    total_bits = _CHUNK * 8
    masks = []
    for k in range(_LEVELS):
        field = 7 << k
        lane = 16 << k  # width of the merged lane
        low_unit = (1 << field) - 1
        high_unit = low_unit << field
        low = high = 0
        for offset in range(0, total_bits, lane):
            low |= low_unit << offset
            high |= high_unit << offset
        masks.append((low, high, 1 << k))
    return masks


_MASKS = _build_masks()


def _steps(n: int) -> int:
    return (n - 1).bit_length() if n > 1 else 0


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets (one per byte, each < 128) into octets, after ``fill_bits`` zero bits."""
    n = len(septets)
    if n > _CHUNK:
        if fill_bits:
            raise PduError("fill bits are only used with short user data")
        return b"".join(
            pack_septets(septets[i : i + _CHUNK]) for i in range(0, n, _CHUNK)
        )
    v = int.from_bytes(septets, "little")
    for low, high, gap in _MASKS[: _steps(n)]:
        v = (v & low) | ((v >> gap) & high)
    return (v << fill_bits).to_bytes((n * 7 + fill_bits + 7) >> 3, "little")


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Unpack ``count`` septets from ``data``, skipping ``fill_bits`` leading bits.

    PduError if ``data`` is too short to hold them.
    """
    need = (count * 7 + fill_bits + 7) >> 3
    if len(data) < need:
        raise PduError(
            f"user data holds {len(data)} octets, {count} septets need {need}"
        )
    if count > _CHUNK:
        if fill_bits:
            raise PduError("fill bits are only used with short user data")
        step = _CHUNK * 7 // 8
        out = []
        for i, start in enumerate(range(0, count, _CHUNK)):
            n = min(_CHUNK, count - start)
            out.append(unpack_septets(data[i * step : i * step + step], n))
        return b"".join(out)
    v = (int.from_bytes(data[:need], "little") >> fill_bits) & ((1 << (count * 7)) - 1)
    for low, high, gap in reversed(_MASKS[: _steps(count)]):
        v = (v & low) | ((v & high) << gap)
    return v.to_bytes(count, "little")


def gsm7_pack(text: str) -> bytes:
    """Pack ``text`` as GSM 7-bit default alphabet + extension table; PduError if it can't."""
    return pack_septets(DEFAULT.encode(text))


_CR = 0x0D


def gsm7_unpack(data: bytes, septets: int | None = None) -> str:
    """Unpack GSM 7-bit packed ``data`` to text, leniently (unknown codes become '?').

    With ``septets=None`` the count is inferred from the length; a final CR that only pads
    seven spare bits (23.038 §6.1.2.3.1: 8n septets ending in CR) is dropped.
    """
    data = bytes(data)
    if septets is None:
        septets = len(data) * 8 // 7
        raw = unpack_septets(data, septets)
        if septets and septets % 8 == 0 and raw[-1] == _CR:
            raw = raw[:-1]
    else:
        if septets < 0:
            raise PduError(f"negative septet count {septets}")
        raw = unpack_septets(data, septets)
    return decode_septets(raw)
