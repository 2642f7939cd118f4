"""Phone numbers in E.164 (``+14155550100``), read with the phonenumbers library."""

from __future__ import annotations

import phonenumbers

from appliance.errors import ApplianceError


class InvalidNumber(ApplianceError):
    """A string that is not a valid phone number for the configured region."""


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
        raise InvalidNumber(f"{raw!r} is not a phone number: {_reason(exc)}") from None
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_number(number) or default_region
        raise InvalidNumber(f"{raw!r} is not a valid phone number (read as a {region} number)")
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
