"""The API's routers, one module per route group."""

from __future__ import annotations

from appliance.api.routes import approval, audit
from appliance.api.routes import broadcasts, contacts, groups, inbound, messages, modems, optouts, privacy, segments, system, twilio

ROUTERS = (
    messages.router, inbound.router, modems.router, optouts.router, segments.router, system.router,
    contacts.router, groups.router, broadcasts.router, twilio.router,
    privacy.router, approval.router, audit.router,
)

__all__ = ["ROUTERS"]
