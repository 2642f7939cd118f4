"""Logging with the modem's name in every line."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["ModemLogAdapter", "modem_logger"]


class ModemLogAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes each message with ``[name]`` so every line says which modem it is about."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['modem']}] {msg}", kwargs  # type: ignore[index]


def modem_logger(logger: logging.Logger, name: str) -> ModemLogAdapter:
    """``logger`` wrapped so its lines carry the modem's ``name``."""
    return ModemLogAdapter(logger, {"modem": name})
