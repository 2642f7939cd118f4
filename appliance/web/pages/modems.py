"""For admins: every modem (identity, counters, budget, SIM health with pause / resume
buttons) and one modem's live diag report."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from appliance import audit
from appliance.api.deps import CheckedForm, ServicesDep, StaffAdmin
from appliance.api.services import Services
from appliance.api.store import StoreStats
from appliance.modem.errors import ModemError
from appliance.queue.sim_health import UnknownModem, apply_now, sim_health_of
from appliance.web.pages.dashboard import ModemRow, local_midnight, modem_rows
from appliance.web.render import page, redirect
from appliance.web.users import Session

__all__ = ["ModemView", "modem_views", "router"]

router = APIRouter(include_in_schema=False)
log = logging.getLogger("appliance.web")



@dataclass(frozen=True, slots=True)
class ModemView:
    """A modem on the admin pages: the dashboard's row plus registration, identity and the
    parts it sent (today in the appliance's timezone, and ever)."""

    row: ModemRow
    registration: str | None
    imei: str | None
    iccid: str | None
    model: str | None
    sent_today: int
    sent_total: int


def modem_views(services: Services) -> list[ModemView]:
    zone = ZoneInfo(services.settings.broadcasts.timezone)
    counts = StoreStats(services.queue.engine).sent_counts(since=local_midnight(zone))
    modems = {m.name: m for m in list(services.modems)}
    views = []
    for row in modem_rows(services):
        modem = modems.get(row.name)
        registration: Any = getattr(modem, "registration", None)
        identity: Any = getattr(modem, "identity", None)
        sent = counts.get(row.name)
        views.append(ModemView(
            row=row,
            registration=registration.status if registration else None,
            imei=identity.imei if identity else None,
            iccid=identity.iccid if identity else None,
            model=identity.model if identity else None,
            sent_today=sent.since if sent else 0,
            sent_total=sent.total if sent else 0,
        ))
    return views


@router.get("/modems", response_class=HTMLResponse)
def modems(request: Request, _session: StaffAdmin, services: ServicesDep) -> HTMLResponse:
    return page(request, "modems.html", title="Modems", modems=modem_views(services))


@router.get("/modems/{name}", response_class=HTMLResponse)
def modem(request: Request, name: str, _session: StaffAdmin, services: ServicesDep) -> HTMLResponse:
    """One modem and its diag report, read live over the port. A sync route runs in the
    threadpool, so the AT dialogue (a few hundred ms, seconds on a hung modem) blocks no
    other request; the transport's command lock serialises it with the modem's worker."""
    view = next((v for v in modem_views(services) if v.row.name == name), None)
    managed = next((m for m in list(services.modems) if m.name == name), None)
    if view is None or managed is None:
        return page(request, "error.html", status_code=404, title="No such modem",
                    message=f"There is no modem named {name!r}. The modems page lists them all.")
    rows: list[tuple[str, str]] | None = None
    error: str | None = None
    try:
        rows = managed.diagnostics().rows()
    except ModemError as exc:
        error = exc.message
        log.info("web: diag report of %s failed: %s", name, exc.message)
    return page(request, "modem.html", title=f"Modem {name}", modem=view, diag=rows,
                diag_error=error, now=time.time())


def _health_action(request: Request, name: str, session: Session, services: Services, verb: str) -> Response:
    health = sim_health_of(services)
    try:
        health.check_known(name, [m.name for m in list(services.modems)])
    except UnknownModem:
        return page(request, "error.html", status_code=404, title="No such modem",
                    message=f"There is no modem named {name!r}. The modems page lists them all.")
    by = f"web:{session.user.username}"
    if verb == "resume":
        row = health.resume(name, by=by)
        changed = row is not None
        message = f"{name} resumed: it takes work again." if changed else f"{name} was not paused."
    else:
        row, changed = health.pause(name, by=by)
        message = (f"{name} paused: the other SIMs take its work until you resume it." if changed
                   else f"{name} was paused already.")
    if changed:
        apply_now(services)
        audit.record(services.queue.engine, audit.Actor.user(session.user.username),
                     audit.Action.MODEM_RESUME if verb == "resume" else audit.Action.MODEM_PAUSE, name,
                     {"reason": row.reason if row is not None else None})
        log.info("web: %s: modem %s %s", session.user.username, name, verb)
    return redirect("/modems", flash=message)


@router.post("/modems/{name}/resume")
def resume(request: Request, name: str, session: StaffAdmin, services: ServicesDep, _form: CheckedForm) -> Response:
    """Resume a SIM paused by its health check (or by an admin)."""
    return _health_action(request, name, session, services, "resume")


@router.post("/modems/{name}/pause")
def pause(request: Request, name: str, session: StaffAdmin, services: ServicesDep, _form: CheckedForm) -> Response:
    """Pause a SIM until an admin resumes it."""
    return _health_action(request, name, session, services, "pause")
