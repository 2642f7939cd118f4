"""The FastAPI dependencies of the API routes and the staff pages, declared once.

Routes and pages take what they need as annotated parameters: the running system
(:data:`ServicesDep`), its database engine (:data:`EngineDep`), the service objects built
on it (:data:`Book`, :data:`Broadcasts`), the request's API key checked for a scope
(:data:`ReadKey`, :data:`SendKey`, :data:`AdminKey`, or ``Depends(require(scope))``) and,
on the pages, the signed-in staff member (:data:`SignedIn`, :data:`StaffAdmin`) and a
CSRF-checked form (:data:`CheckedForm`). The checks themselves live in
:mod:`appliance.api.auth` and :mod:`appliance.web.auth`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine
from starlette.datastructures import FormData

from appliance.api.auth import get_services, require
from appliance.api.keys import ApiKey
from appliance.api.services import Services
from appliance.broadcasts import BroadcastService, BroadcastSpec, Preview
from appliance.contacts import ContactBook
from appliance.queue import InvalidRequest, RateLimits
from appliance.web.auth import WebState, admin_only, checked_form, signed_in, web_state
from appliance.web.users import Session

__all__ = [
    "AdminKey",
    "Book",
    "Broadcasts",
    "CheckedForm",
    "EngineDep",
    "ReadKey",
    "SendKey",
    "ServicesDep",
    "SignedIn",
    "StaffAdmin",
    "Web",
    "broadcast_service",
    "checked_preview",
    "contact_book",
    "get_services",
    "require",
]

ServicesDep = Annotated[Services, Depends(get_services)]

ReadKey = Annotated[ApiKey, Depends(require("read"))]
SendKey = Annotated[ApiKey, Depends(require("send"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]

Web = Annotated[WebState, Depends(web_state)]
SignedIn = Annotated[Session, Depends(signed_in)]
StaffAdmin = Annotated[Session, Depends(admin_only)]
CheckedForm = Annotated[FormData, Depends(checked_form)]


def _engine(services: ServicesDep) -> Engine:
    return services.queue.engine


EngineDep = Annotated[Engine, Depends(_engine)]


def contact_book(services: Services) -> ContactBook:
    """The contact book on the appliance's database."""
    return ContactBook(services.queue.engine, default_region=services.settings.appliance.default_region,
                       clock=services.queue.clock)


def _estimated(services: Services) -> list[Any]:
    """The workers of the modems online now; of every modem when none is."""
    workers: list[Any] = list(getattr(services.dispatcher, "workers", []))
    return [w for w in workers if getattr(w.modem, "online", False)] or workers


def _limits(services: Services) -> list[RateLimits]:
    """Caps of the modems online now; of every configured modem when none is."""
    workers = _estimated(services)
    if workers:
        return [w.limits for w in workers]
    return [RateLimits.from_config(m) for m in services.settings.modems]


def _sims(services: Services) -> list[str]:
    """The SIMs (send-log keys) of :func:`_limits`' modems, in its order (sticky sender)."""
    workers = _estimated(services)
    if workers:
        return [str(w.sim) for w in workers]
    return [m.iccid or m.name for m in services.settings.modems]


def broadcast_service(services: Services) -> BroadcastService:
    """The broadcast service on the appliance's queue and contact book."""
    return BroadcastService(
        services.queue, contact_book(services),
        footer=services.settings.broadcasts.opt_out_footer, limits=lambda: _limits(services),
        sims=lambda: _sims(services),
    )


def checked_preview(services: Services, service: BroadcastService, spec: BroadcastSpec,
                    *, samples: int = 0) -> Preview:
    """``service.preview(spec)``, refused (``InvalidRequest`` naming ``audience``) when the
    audience has more recipients than ``[broadcasts] max_recipients``."""
    preview = service.preview(spec, samples=samples)
    cap = services.settings.broadcasts.max_recipients
    if preview.recipients > cap:
        raise InvalidRequest(
            field="audience", detail=f"{preview.recipients:,} recipients; a broadcast may have at most {cap:,} "
            "([broadcasts] max_recipients): split the audience into several broadcasts"
        )
    return preview


def _book(services: ServicesDep) -> ContactBook:
    return contact_book(services)


def _broadcasts(services: ServicesDep) -> BroadcastService:
    return broadcast_service(services)


Book = Annotated[ContactBook, Depends(_book)]
Broadcasts = Annotated[BroadcastService, Depends(_broadcasts)]
