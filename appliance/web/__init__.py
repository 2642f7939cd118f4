"""The staff web pages: sign-in, dashboard, compose, broadcasts, inbox, contacts, opt-outs
and (for admins) modems and API keys, served by the API's app.

- :func:`mount_web` — add the pages to an app from :func:`appliance.api.create_app`;
- :class:`Users`, :class:`Sessions` — the people who sign in and their browser sessions.
"""

from __future__ import annotations

from appliance.web.site import mount_web
from appliance.web.users import ROLES, Session, Sessions, User, UserError, Users

__all__ = ["ROLES", "Session", "Sessions", "User", "UserError", "Users", "mount_web"]
