"""For admins: email to SMS — its settings (never the relay's password), the TLS
certificate's fingerprint and the last 50 refused mails with their reasons."""

from __future__ import annotations


from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from appliance.api.deps import ServicesDep, StaffAdmin
from appliance.web.render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

REFUSALS_SHOWN = 50


@router.get("/email", response_class=HTMLResponse)
def email_page(request: Request, _session: StaffAdmin,
               services: ServicesDep) -> HTMLResponse:
    from appliance.db import email as email_db
    from appliance.db.engine import read_tx
    from appliance.email.info import describe

    service = getattr(services, "email", None)
    settings = describe(services.settings, port=service.port if service is not None else None)
    with read_tx(services.queue.engine) as tx:
        refusals = email_db.list_refusals(tx, limit=REFUSALS_SHOWN)
    counters = service.counters if service is not None else None
    return page(request, "email.html", title="Email to SMS", running=service is not None, settings=settings,
                refusals=refusals, counters=counters)
