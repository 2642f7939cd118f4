"""What the API needs of the running system: :class:`Services`.

The daemon's ``Appliance`` satisfies it; tests build a small object with the same
attributes. Declared as a protocol so the API never imports the daemon (the daemon imports
the API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from appliance.api.keys import ApiKeys
    from appliance.config import Settings
    from appliance.queue import Dispatcher, Queue

__all__ = ["Services"]


class Services(Protocol):
    """The attributes the API reads, each at request time (the daemon may replace them).

    ``modems`` holds :class:`~appliance.modem.ManagedModem`-like objects (``name``,
    ``state``, ``online``, ``port``, ``identity``, ``signal``, ``registration``,
    ``operator``, ``last_error``); ``dispatcher.budgets()`` maps a modem name to its
    :class:`~appliance.queue.BudgetView`; ``started_at`` is UNIX seconds. ``create_app``
    sets ``metrics`` to the app's :class:`~appliance.api.metrics.Metrics`.
    """

    settings: Settings
    queue: Queue
    keys: ApiKeys
    modems: list[Any]
    dispatcher: Dispatcher
    started_at: float
    metrics: Any
