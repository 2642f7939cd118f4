"""The appliance's own numbers: which modem a Twilio ``From`` names, and the number a
modem's messages show as ``from``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.config import Settings
from appliance.numbers import InvalidNumber, to_e164

__all__ = ["modem_numbers", "resolve_sender"]


def modem_numbers(settings: Settings, modems: Sequence[Any] = ()) -> dict[str, str]:
    """Modem name → its SIM's number: ``[[modems]] number``, ``[twilio] numbers``, or what
    the modem itself reports (``AT+CNUM``)."""
    out: dict[str, str] = {}
    for modem in modems:
        identity = getattr(modem, "identity", None)
        own = getattr(identity, "own_number", None)
        if own:
            out[modem.name] = own
    out.update(settings.twilio.numbers)
    out.update({m.name: m.number for m in settings.modems if m.number})
    return out


def resolve_sender(raw: str, settings: Settings, modems: Sequence[Any] = ()) -> str | None:
    """The modem a ``From`` value names (its name or its number), or None if none does."""
    names = {m.name for m in settings.modems} | {m.name for m in modems}
    if raw in names:
        return raw
    numbers = modem_numbers(settings, modems)
    try:
        wanted = to_e164(raw, settings.appliance.default_region)
    except InvalidNumber:
        return None
    for name, number in numbers.items():
        try:
            if to_e164(number, settings.appliance.default_region) == wanted:
                return name
        except InvalidNumber:
            continue
    return None
