"""What the API reads of the running system, built from real parts without modems."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from appliance.api import ApiKeys
from appliance.config import Settings
from appliance.queue import Dispatcher, Queue

__all__ = ["ApiServices"]


@dataclass
class ApiServices:
    """The attributes :class:`appliance.api.services.Services` names."""

    settings: Settings
    queue: Queue
    keys: ApiKeys
    dispatcher: Dispatcher
    modems: list[Any] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    metrics: Any = None
