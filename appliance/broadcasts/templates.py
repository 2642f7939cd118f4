"""Message templates: ``Hello {first_name|there}, your appointment is at {time}.``

``{field}`` is replaced by the recipient's field; ``{field|default}`` uses ``default``
when the recipient has no such field or it is empty; ``{{`` and ``}}`` are literal braces.
A field a recipient lacks (absent or empty) and that has no default is *missing*: it
renders as nothing and :meth:`Template.render` names it, so a preview can report it
before anything is sent. Field names are letters, digits and ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Mapping

from appliance.queue.errors import InvalidRequest

__all__ = ["Template", "TemplateError"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(InvalidRequest):
    """A template that cannot be read (an unclosed brace, a bad field name)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    default: str | None


class Template:
    """A parsed template; :meth:`render` fills it for one recipient."""

    __slots__ = ("_segments", "fields", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise TemplateError(field="template", detail="the text is empty")
        self.text = text
        segments: list[str | _Field] = []
        literal: list[str] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            literal.append(text[pos:m.start()])
            pos = m.end()
            token = m.group(0)
            if token == "{{":
                literal.append("{")
            elif token == "}}":
                literal.append("}")
            elif m.group(1) is None:
                raise TemplateError(
                    field="template", detail=f"a lone {token!r} at character {m.start() + 1}; write {token * 2} for a "
                    "literal brace or {field} for a placeholder"
                )
            else:
                name, bar, default = m.group(1).partition("|")
                name = name.strip()
                if not _NAME.fullmatch(name):
                    raise TemplateError(
                        field="template",
                        detail=f"{{{m.group(1)}}} is not a placeholder; a field name is letters, digits "
                        "and _ (e.g. {first_name} or {first_name|there})"
                    )
                if literal:
                    segments.append("".join(literal))
                    literal = []
                segments.append(_Field(name, default if bar else None))
        literal.append(text[pos:])
        if "".join(literal):
            segments.append("".join(literal))
        self._segments = tuple(segments)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(s.name for s in segments if isinstance(s, _Field)))

    @property
    def required(self) -> tuple[str, ...]:
        """Fields used without a default somewhere in the template."""
        return tuple(dict.fromkeys(s.name for s in self._segments if isinstance(s, _Field) and s.default is None))

    def render(self, values: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
        """``(text, missing fields)`` for one recipient."""
        out: list[str] = []
        missing: list[str] = []
        for seg in self._segments:
            if isinstance(seg, str):
                out.append(seg)
                continue
            value = values.get(seg.name)
            if value:
                out.append(value)
            elif seg.default is not None:
                out.append(seg.default)
            elif seg.name not in missing:
                missing.append(seg.name)
        return "".join(out), tuple(missing)
