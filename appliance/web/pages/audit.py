"""For admins: the audit trail (``/audit``), newest first, filtered by a GET form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from appliance.api.deps import ServicesDep, StaffAdmin
from appliance.audit import ACTOR_KINDS, Action, AuditFilter, AuditLog, number_ref
from appliance.numbers import InvalidNumber, one_number
from appliance.queue import InvalidRequest
from appliance.web.render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# The action filter's choices: every kind ("broadcast.") then every action.
ACTION_CHOICES: list[tuple[str, str]] = [
    *((f"{kind}.", f"any {kind} action") for kind in dict.fromkeys(a.value.split(".")[0] for a in Action)),
    *((a.value, a.value) for a in Action),
]


def _day(raw: str, zone: ZoneInfo, field: str, errors: dict[str, str], *, end: bool = False) -> float | None:
    """A YYYY-MM-DD day in the appliance's timezone → its start (or the next day's: ``end``)."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[field] = "Give a date as YYYY-MM-DD, e.g. 2026-11-30."
        return None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), zone).timestamp()


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, _session: StaffAdmin,
               services: ServicesDep, actor: str = "", action: str = "",
               since: str = "", until: str = "", target: str = "", number: str = "",
               cursor: str | None = None) -> HTMLResponse:
    values = {"actor": actor.strip()[:200], "action": action.strip()[:64], "since": since.strip()[:32],
              "until": until.strip()[:32], "target": target.strip()[:200], "number": number.strip()[:64]}
    errors: dict[str, str] = {}
    zone = ZoneInfo(services.settings.broadcasts.timezone)
    since_ts = _day(values["since"], zone, "since", errors)
    until_ts = _day(values["until"], zone, "until", errors, end=True)
    if values["action"] and values["action"] not in dict(ACTION_CHOICES):
        errors["action"] = "Choose an action from the list."
    wanted_target = values["target"] or None
    if values["number"]:
        try:
            wanted_target = number_ref(one_number(values["number"], services.settings.appliance.default_region))
        except InvalidNumber as exc:
            errors["number"] = str(exc)
    events, next_cursor, problem = [], None, None
    if not errors:
        where = AuditFilter(actor=values["actor"] or None, action=values["action"] or None, since=since_ts,
                            until=until_ts, target=wanted_target)
        try:
            listing = AuditLog(services.queue.engine).list(where, limit=PAGE_SIZE, cursor=cursor or None)
            events, next_cursor = listing.items, listing.next_cursor
        except InvalidRequest:
            problem = "That page link is out of date; here is the first page again."
            listing = AuditLog(services.queue.engine).list(where, limit=PAGE_SIZE)
            events, next_cursor, cursor = listing.items, listing.next_cursor, None
    query = urlencode({k: v for k, v in values.items() if v})
    return page(request, "audit.html", status_code=422 if errors else 200, title="Audit trail", events=events,
                values=values, errors=errors, actions=ACTION_CHOICES, actor_kinds=ACTOR_KINDS,
                next_cursor=next_cursor, cursor=cursor, problem=problem, query=query)
