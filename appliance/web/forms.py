"""Form helpers shared by the pages."""

from __future__ import annotations

from appliance.errors import ApplianceError, InvalidInput

__all__ = ["field_errors"]


def field_errors(exc: ApplianceError, default: str, *, rename: dict[str, str] | None = None) -> dict[str, str]:
    """``{field: message}`` from an error naming its field (:class:`InvalidInput`), else
    ``default`` gets the whole message. ``rename`` maps the error's field to the form's."""
    if not isinstance(exc, InvalidInput) or exc.field is None:
        text = str(exc)
        return {default: text[:1].upper() + text[1:]}
    name = (rename or {}).get(exc.field, exc.field)
    return {name: exc.detail[:1].upper() + exc.detail[1:]}
