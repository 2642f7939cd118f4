"""The staff web pages: sign-in, dashboard, compose, broadcasts, inbox, contacts, opt-outs
and (for admins) modems and API keys, served by the API's app.

- :func:`mount_web` — add the pages to an app from :func:`appliance.api.create_app`;
- :class:`Users`, :class:`Sessions` — the people who sign in and their browser sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.web.users import ROLES, Session, Sessions, User, UserError, Users

if TYPE_CHECKING:
    from appliance.web.site import mount_web

__all__ = ["ROLES", "Session", "Sessions", "User", "UserError", "Users", "mount_web"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the pages import appliance.api.deps, which imports this
    # package's auth module, so importing the pages here would close a cycle.
    if name == "mount_web":
        from appliance.web.site import mount_web

        return mount_web
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
