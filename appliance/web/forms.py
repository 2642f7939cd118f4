"""Form helpers shared by the pages."""

from __future__ import annotations

import re

from appliance.errors import ApplianceError

__all__ = ["field_errors"]

_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$", re.DOTALL)


def field_errors(exc: ApplianceError, default: str, *, rename: dict[str, str] | None = None) -> dict[str, str]:
    """``{field: message}`` from an error worded ``"field: message"`` (else ``default``
    gets the whole message). ``rename`` maps the error's field to the form's."""
    text = str(exc)
    match = _FIELD_PREFIX.match(text)
    if match is None:
        return {default: text[:1].upper() + text[1:]}
    name, message = match[1], match[2]
    name = (rename or {}).get(name, name)
    return {name: message[:1].upper() + message[1:]}
