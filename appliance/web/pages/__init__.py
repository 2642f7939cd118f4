"""The page routers, in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from appliance.web.pages import (
    account,
    approval,
    audit,
    broadcasts,
    compose,
    contacts,
    dashboard,
    email,
    inbox,
    keys,
    modems,
    optouts,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    account.router, dashboard.router, compose.router, broadcasts.router, inbox.router,
    contacts.router, optouts.router, modems.router, keys.router, email.router, approval.router, audit.router,
]
