"""Reading what real modems print: registration lines, ``+CUSD`` lines and USSD text.

Pure functions, no I/O. They follow 3GPP TS 27.007 where modems do and the shapes met in
the field where they do not (unquoted or blank-padded fields, an extra field in
``+CEREG``, ``+CUSD`` text without quotes, UCS-2 text under a GSM-7 coding scheme).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.pdu import PduError, gsm7_unpack

__all__ = ["CusdLine", "RegistrationLine", "decode_ussd", "parse_cusd", "parse_registration"]

_MAX_STAT = 11  # 27.007 §7.2: 11 "attached for emergency bearer services only" is the last
_HEX = re.compile(r"[0-9A-Fa-f]+")
_HEX_PAIRS = re.compile(r"(?:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True, slots=True)
class RegistrationLine:
    """One ``+CREG``/``+CGREG``/``+CEREG`` line.

    ``solicited`` is True for the answer to a read (``<n>,<stat>,…``) and False for the
    unsolicited form (``<stat>,…``). ``lac`` (TAC for CEREG) and ``cell_id`` are upper-case
    hex; ``act`` is the access technology number. ``clean`` is False when a field other than
    ``<stat>`` could not be read (it is then ``None``).
    """

    name: str
    solicited: bool
    stat: int
    n: int | None = None
    lac: str | None = None
    cell_id: str | None = None
    act: int | None = None
    clean: bool = True


@dataclass(frozen=True, slots=True)
class CusdLine:
    """One ``+CUSD: <m>[,<str>[,<dcs>]]`` line: ``status`` is ``<m>``, ``text`` the raw
    ``<str>`` (quotes removed, still encoded), ``dcs`` the data coding scheme if given."""

    status: int
    text: str | None = None
    dcs: int | None = None


@dataclass(frozen=True, slots=True)
class _Field:
    value: str
    quoted: bool


def _split_fields(args: str) -> list[_Field]:
    """Comma-separated fields; quotes honoured and removed, blanks stripped."""
    out: list[_Field] = []
    cur: list[str] = []
    quoted = in_quotes = False
    for ch in args:
        if ch == '"':
            in_quotes = not in_quotes
            quoted = True
        elif ch == "," and not in_quotes:
            out.append(_Field("".join(cur).strip(), quoted))
            cur, quoted = [], False
        else:
            cur.append(ch)
    out.append(_Field("".join(cur).strip(), quoted))
    return out


def _stat_like(field: _Field) -> bool:
    # An unquoted small number; "0001" is a LAC written without quotes, "001" a padded stat.
    v = field.value
    return not field.quoted and v.isdigit() and len(v) <= 3 and int(v) <= _MAX_STAT


def parse_registration(name: str, args: str) -> RegistrationLine | None:
    """Read a registration line (``name`` is ``"+CREG"``, ``"+CGREG"`` or ``"+CEREG"``,
    ``args`` what follows the colon); ``None`` when not even ``<stat>`` is readable.

    The answer to a read starts with ``<n>`` and the URC does not; the URC's second field
    is a quoted ``<lac>`` (27.007 §7.2). Modems that leave the quotes off are told apart by
    the second field: a small number is ``<stat>``, anything else a location code.
    """
    name = name.strip().upper()
    fields = _split_fields(args)
    first = fields[0]
    if not first.value.isdigit():
        return None
    solicited = False
    if len(fields) >= 2 and not first.quoted and int(first.value) <= 5:
        if fields[1].quoted:
            solicited = False
        elif len(fields) >= 3 and fields[2].quoted:
            solicited = True
        else:
            solicited = _stat_like(fields[1])
    n = int(first.value) if solicited else None
    stat_field = fields[1] if solicited else first
    if not stat_field.value.isdigit() or int(stat_field.value) > 99:
        return None
    stat = int(stat_field.value)
    tail = fields[2:] if solicited else fields[1:]
    clean = stat <= _MAX_STAT
    if name == "+CEREG" and len(tail) == 4:
        # <tac>,<rac>,<ci>,<AcT>: an extra field before the cell id (Novatel, Altair LTE).
        tail = [tail[0], tail[2], tail[3]]
    lac, ok_lac = _hex_field(tail[0] if tail else None)
    ci, ok_ci = _hex_field(tail[1] if len(tail) > 1 else None)
    act: int | None = None
    if len(tail) > 2 and tail[2].value:
        act = int(tail[2].value) if tail[2].value.isdigit() else None
        clean = clean and act is not None
    return RegistrationLine(name=name, solicited=solicited, stat=stat, n=n, lac=lac,
                            cell_id=ci, act=act, clean=clean and ok_lac and ok_ci)


def _hex_field(field: _Field | None) -> tuple[str | None, bool]:
    if field is None or not field.value:
        return None, True
    value = "".join(field.value.split())
    if not _HEX.fullmatch(value) or len(value) > 8:
        return None, False
    return value.upper(), True


def parse_cusd(args: str) -> CusdLine | None:
    """Read what follows ``+CUSD:``; ``None`` when there is no leading ``<m>``.

    ``<str>`` may be quoted (27.007 §7.15) or bare, as a Huawei E160 prints it
    (``0, 49B41C…``); bare text is taken as hex (with an optional DCS after it) when it is
    hex, and as it stands otherwise.
    """
    m = re.match(r"\s*(\d+)\s*(?:,(.*))?\Z", args, re.S)
    if not m:
        return None
    status = int(m.group(1))
    rest = m.group(2)
    if rest is None or not rest.strip():
        return CusdLine(status)
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.rfind('"')
        if end == 0:  # the closing quote never came
            return CusdLine(status, rest[1:])
        tail = re.fullmatch(r"\s*,\s*(\d+)\s*", rest[end + 1 :])
        return CusdLine(status, rest[1:end], int(tail.group(1)) if tail else None)
    bare = re.fullmatch(r"([0-9A-Fa-f]+)\s*(?:,\s*(\d+))?\s*", rest)
    if bare:
        return CusdLine(status, bare.group(1), int(bare.group(2)) if bare.group(2) else None)
    return CusdLine(status, rest)


def _ussd_alphabet(dcs: int) -> str:
    """``"gsm7"``, ``"8bit"`` or ``"ucs2"`` for a CBS data coding scheme (TS 23.038 §5)."""
    if dcs == 0x11:
        return "ucs2"
    if dcs < 0x40:
        return "gsm7"
    if 0x40 <= dcs < 0x80 or 0x90 <= dcs < 0xA0:
        return {0: "gsm7", 1: "8bit", 2: "ucs2"}.get((dcs >> 2) & 0x03, "gsm7")
    if dcs >= 0xF0:
        return "8bit" if dcs & 0x04 else "gsm7"
    return "gsm7"


def _mostly_text(text: str) -> bool:
    if not text:
        return False
    ok = sum(1 for ch in text if ch.isprintable() or ch in "\r\n")
    plain = sum(1 for ch in text if ch.isascii() and (ch.isalnum() or ch in " .,:;!?-/%()#*+\n\r"))
    return ok == len(text) and plain >= 0.8 * len(text)


def _ucs2(hex_text: str) -> str:
    # Some modems pad the text with U+0000 and whatever was in their buffer after it.
    return bytes.fromhex(hex_text).decode("utf-16-be", "replace").split("\x00", 1)[0]


def decode_ussd(text: str, dcs: int | None) -> str:
    """A ``+CUSD`` reply as text: UCS-2 hex, GSM-7 packed hex or plain, told apart by the
    DCS and by the characters (a DCS of GSM-7 with UCS-2 hex is met in the field)."""
    alphabet = _ussd_alphabet(dcs if dcs is not None else 15)
    if not _HEX_PAIRS.fullmatch(text):
        return text
    if dcs == 0x11 and len(text) >= 8 and len(text) % 4 == 0:
        # 23.038 §5: two GSM-7 characters of ISO 639 language, packed into two octets.
        return _ucs2(text[4:])
    if alphabet == "ucs2" and len(text) % 4 == 0:
        return _ucs2(text)
    if alphabet == "8bit":
        return bytes.fromhex(text).decode("latin-1")
    if alphabet == "gsm7" and len(text) >= 4 and not text.isdigit():
        try:
            unpacked = gsm7_unpack(bytes.fromhex(text)).rstrip("\r")
        except PduError:
            unpacked = ""
        if _mostly_text(unpacked):
            return unpacked
        if len(text) % 4 == 0:
            wide = _ucs2(text)
            if _mostly_text(wide):
                return wide
    return text
