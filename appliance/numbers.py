"""Phone numbers in E.164 (``+14155550100``), read with the phonenumbers library, and
lists of numbers as people type or paste them (:func:`split_numbers`, :func:`read_numbers`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers

from appliance.errors import InvalidInput
from appliance.text import shorten

__all__ = [
    "E164", "InvalidNumber", "NumberList", "mask", "mask_email", "mask_emails", "one_number", "quoted", "read_numbers",
    "split_numbers", "to_e164",
]

# What E.164 allows: "+", a country code that does not start with 0, 15 digits at most.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")

# Between numbers: new lines, commas, semicolons and tabs (a column pasted from a
# spreadsheet). Spaces, dots, dashes and brackets belong to the number ("+1 415 641 0011",
# "(415) 641-0012", "082.555.1234").
_SEPARATORS = re.compile(r"[\r\n\t,;]+")


class InvalidNumber(InvalidInput):
    """A string that is not a valid phone number for the configured region (``field`` is
    ``None``: the caller knows which input it read)."""


def quoted(raw: str) -> str:
    """``raw`` as ``repr`` shows it, cut short: error messages name what was typed without
    echoing a whole line of a file."""
    return repr(shorten(raw))


def mask(number: str | None) -> str:
    """``number`` as log lines show it: the country code and three digits, the last four,
    the middle hidden (``+14156410011`` → ``+1415•••0011``). Anything else that is not a
    short code loses all but its first and last characters."""
    if not number:
        return "-"
    text = str(number).strip()
    if E164.fullmatch(text):
        digits = text[1:]
        try:
            cc = len(str(phonenumbers.parse(text, None).country_code))
        except phonenumbers.NumberParseException:
            cc = 1
        keep = min(cc + 3, max(0, len(digits) - 7))  # at least three digits hidden
        return f"+{digits[:keep]}•••{digits[-4:]}"
    if len(text) <= 6:  # a short code or a network name: not a person's number
        return text
    return f"{text[:1]}•••{text[-2:]}"


# An address as it appears in free text (an SMTP answer, a refusal's reason): local part, @, domain.
_EMAIL = re.compile(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


def mask_email(address: str | None) -> str:
    """An email address as log lines show it: the local part's first character and the
    domain (``jane.doe@school.lan`` → ``j•••@school.lan``); a local part that is a phone
    number is masked as one."""
    if not address:
        return "-"
    local, at, domain = str(address).strip().rpartition("@")
    if not at:
        return mask(domain)
    if E164.fullmatch(local):
        return f"{mask(local)}@{domain}"
    return f"{local[:1]}•••@{domain}"


def mask_emails(text: str) -> str:
    """``text`` with every email address in it masked by :func:`mask_email`."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def to_e164(raw: str, default_region: str) -> str:
    """Normalise ``raw`` to E.164; numbers without ``+`` are read in ``default_region``.

    ``00`` and other international prefixes are understood; spaces, dashes, dots and
    parentheses are ignored. Raises :class:`InvalidNumber` saying why a number is refused.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidNumber("empty phone number")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{quoted(raw)} is not a phone number: {_reason(exc)}") from None
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_number(number) or default_region
        raise InvalidNumber(f"{quoted(raw)} is not a valid phone number (read as a {region} number)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "it does not look like a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, str(exc))


def split_numbers(text: str) -> list[str]:
    """The entries of a typed or pasted list of numbers, each stripped, empty ones left out.

    Numbers are separated by new lines, commas, semicolons or tabs; spaces, dots, dashes
    and brackets inside an entry are the number's own: ``"+1 415 641 0011, (415) 641-0012"``
    is two entries.
    """
    return [entry for part in _SEPARATORS.split(text) if (entry := part.strip())]


@dataclass(slots=True)
class NumberList:
    """A typed list read: ``entries`` as typed, ``numbers`` in E.164 (in order, each once),
    ``unreadable`` the entries that are not numbers with the reason (in order)."""

    entries: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def read_numbers(text: str, default_region: str) -> NumberList:
    """:func:`split_numbers` then :func:`to_e164` on each entry."""
    out = NumberList(entries=split_numbers(text))
    seen: set[str] = set()
    for entry in out.entries:
        try:
            number = to_e164(entry, default_region)
        except InvalidNumber as exc:
            out.unreadable.append((entry, str(exc)))
            continue
        if number not in seen:
            seen.add(number)
            out.numbers.append(number)
    return out


def one_number(text: str, default_region: str) -> str:
    """The one number typed in a field made for one (E.164), read like a list entry: a
    trailing comma is harmless, two numbers are refused naming how many there are."""
    entries = split_numbers(text)
    if len(entries) > 1:
        raise InvalidNumber(f"give one number here; this holds {len(entries)} ({', '.join(map(quoted, entries[:3]))}"
                            f"{', ...' if len(entries) > 3 else ''})")
    return to_e164(entries[0] if entries else "", default_region)
