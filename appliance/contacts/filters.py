"""Group filters: ``class = "5B"``, ``class = "5B" and school != North``.

A filter is one or more conditions joined by ``and``; a condition is a field, ``=`` or
``!=``, and a value (quoted with ``"`` or ``'``, or a bare word). Fields are the contact's
``number``, ``first_name``, ``last_name``, ``name`` or any free field. Values compare as
text, ignoring case; a contact without the field has it empty (so ``f != x`` matches it).
:func:`parse_filter` reads a filter into its conditions;
:func:`appliance.db.contacts.filter_sql` compiles them for the database's engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.contacts.errors import FilterError

__all__ = ["FIELD_NAME", "Condition", "parse_filter"]

_TOKEN = re.compile(
    r"""\s*(?:(?P<op>!=|=)|"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<word>[^\s=!"']+))"""
)
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a filter: ``field op value``."""

    field: str
    op: str  # "=" or "!="
    value: str


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(field="filter", detail=f"cannot read {text[pos:]!r} (e.g. class = \"5B\" and school = North)")
        pos = m.end()
        if m["op"]:
            out.append(("op", m["op"]))
        elif m["dq"] is not None:
            out.append(("value", m["dq"]))
        elif m["sq"] is not None:
            out.append(("value", m["sq"]))
        else:
            out.append(("word", m["word"]))
    return out


def parse_filter(text: str) -> list[Condition]:
    """The conditions of ``text``; :class:`FilterError` saying what is wrong."""
    tokens = _tokens(text)
    if not tokens:
        raise FilterError(field="filter", detail="it is empty; write e.g. class = \"5B\"")
    conditions: list[Condition] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise FilterError(field="filter", detail=f"{text!r} ends too early; a condition is: field = value")
        (k1, field), (k2, op), (k3, value) = tokens[i:i + 3]
        if k1 != "word" or not FIELD_NAME.fullmatch(field):
            raise FilterError(field="filter", detail=f"{field!r} is not a field name (letters, digits, _)")
        if k2 != "op":
            raise FilterError(field="filter", detail=f"expected = or != after {field!r}, found {op!r}")
        if k3 == "op":
            raise FilterError(field="filter", detail=f"expected a value after {field} {op}")
        conditions.append(Condition(field, op, value))
        i += 3
        if i == len(tokens):
            return conditions
        kind, word = tokens[i]
        if kind != "word" or word.lower() != "and":
            raise FilterError(field="filter", detail=f"expected 'and' between conditions, found {word!r}")
        i += 1
