"""The local REST API (docs/architecture.md, "Interfaces"): FastAPI app, API-key auth, problem+json errors, metrics.

- :func:`create_app` — the app over a :class:`Services` (the daemon's ``Appliance``);
- :class:`Services` — what the app reads of the running system;
- :class:`Metrics` — the app's Prometheus registry; ``observe_send(modem, seconds)``;
- :class:`ApiKeys`, :class:`ApiKey` — the keys (``appliance keys ...``);
- :class:`ApiProblem` — an error response (problem+json).
"""

from __future__ import annotations

from appliance.api.app import MAX_REQUEST_BYTES, create_app
from appliance.api.keys import SCOPES, ApiKey, ApiKeyError, ApiKeys
from appliance.api.metrics import Metrics
from appliance.api.problems import ApiProblem, Problem
from appliance.api.services import Services

__all__ = [
    "MAX_REQUEST_BYTES",
    "SCOPES",
    "ApiKey",
    "ApiKeyError",
    "ApiKeys",
    "ApiProblem",
    "Metrics",
    "Problem",
    "Services",
    "create_app",
]
