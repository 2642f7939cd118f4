"""The opt-out (suppression) list: anyone signed in may add a number, only admins remove one.

Adding goes through :meth:`Queue.opt_out`, which suppresses the messages still queued to
the number in the same transaction; the consent log records ``web:<username>``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from appliance import audit
from appliance.api.deps import CheckedForm, ServicesDep, SignedIn, StaffAdmin
from appliance.api.services import Services
from appliance.numbers import InvalidNumber, one_number
from appliance.queue.errors import InvalidRequest
from appliance.web.forms import field_errors
from appliance.web.render import page, redirect

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
MAX_NOTE = 500



def _e164(raw: str, services: Services) -> str:
    return one_number(raw, services.settings.appliance.default_region)


def _link(number: str) -> str:
    return "/opt-outs?number=" + number.replace("+", "%2B")


def _opt_outs_page(
    request: Request, services: Services, *, cursor: str | None = None, number: str = "",
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None, status_code: int = 200,
) -> Response:
    problem: str | None = None
    entries, next_cursor = [], None
    try:
        listing = services.queue.list_opt_outs(limit=PAGE_SIZE, cursor=cursor)
        entries, next_cursor = listing.items, listing.next_cursor
    except InvalidRequest as exc:
        problem = str(exc)
    looked_up: str | None = None
    log: list[tuple[datetime, str, str, str | None]] = []
    lookup_error: str | None = None
    if number:
        try:
            looked_up = _e164(number, services)
            log = list(services.queue.consent_log(looked_up))
        except InvalidNumber as exc:
            lookup_error = str(exc)
    return page(
        request, "optouts.html", status_code=status_code, title="Opt-outs", entries=entries,
        next_cursor=next_cursor, cursor=cursor, problem=problem, number=number, looked_up=looked_up,
        looked_up_opted_out=bool(looked_up) and services.queue.is_opted_out(looked_up or ""),
        log=log, lookup_error=lookup_error, errors=errors or {}, values=values or {},
    )


@router.get("/opt-outs", response_class=HTMLResponse)
def opt_outs(request: Request, _session: SignedIn, services: ServicesDep,
             cursor: str | None = None, number: str = "") -> Response:
    return _opt_outs_page(request, services, cursor=cursor or None, number=number.strip()[:64])


@router.post("/opt-outs", response_class=HTMLResponse)
def add_opt_out(request: Request, session: SignedIn, services: ServicesDep,
                form: CheckedForm) -> Response:
    raw, note = (str(form.get(k) or "").strip() for k in ("number", "note"))
    values = {"number": raw, "note": note}
    errors: dict[str, str] = {}
    number = ""
    try:
        number = _e164(raw, services)
    except InvalidNumber as exc:
        errors = field_errors(exc, "number")
    if len(note) > MAX_NOTE:
        errors["note"] = f"Keep the note under {MAX_NOTE} characters."
    if errors:
        return _opt_outs_page(request, services, errors=errors, values=values, status_code=422)
    added = services.queue.opt_out(number, source=f"web:{session.user.username}", note=note or None,
                                   within=audit.if_changed(audit.Actor.user(session.user.username),
                                                           audit.Action.OPTOUT_ADD, audit.masked(number)))
    message = (f"{number} is opted out: nothing more will be sent to it." if added
               else f"{number} was already opted out.")
    return redirect(_link(number), flash=message)


@router.post("/opt-outs/{number}/remove", response_class=HTMLResponse)
def remove_opt_out(request: Request, number: str, session: StaffAdmin,
                   services: ServicesDep, _form: CheckedForm) -> Response:
    try:
        e164 = _e164(number, services)
    except InvalidNumber as exc:
        return page(request, "error.html", status_code=404, title="Not on the list", message=str(exc))
    if not services.queue.opt_in(e164, source=f"web:{session.user.username}", note="removed by an admin",
                                 within=audit.if_changed(audit.Actor.user(session.user.username),
                                                         audit.Action.OPTOUT_REMOVE, audit.masked(e164))):
        return redirect(_link(e164), flash=f"{e164} was not on the opt-out list.")
    return redirect("/opt-outs", flash=f"{e164} removed from the opt-out list: messages to it are sent again.")
