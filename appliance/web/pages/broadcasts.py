"""Broadcasts: the list, one broadcast's progress (live), pause / resume / cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from appliance.api.deps import CheckedForm, ServicesDep, SignedIn, broadcast_service
from appliance.api.params import record_id
from appliance.api.services import Services
from appliance.audit import Actor
from appliance.broadcasts import BroadcastService, BroadcastView
from appliance.queue import InvalidState, NotFound
from appliance.db import stats as stats_db
from appliance.db.engine import read_tx
from appliance.web.chart_data import broadcast_charts
from appliance.web.render import page, redirect
from appliance.web.users import Session

__all__ = ["broadcast_action", "progress_of", "router"]

router = APIRouter(include_in_schema=False)
log = logging.getLogger("appliance.web")

Services_ = ServicesDep
BroadcastId = record_id("broadcast")

# Shown in this order, with these words.
STATE_LABELS = {
    "queued": "Waiting", "sending": "Sending", "sent": "Sent", "delivered": "Delivered",
    "failed": "Failed", "unknown": "Outcome unknown", "suppressed": "Opted out (not sent)",
    "cancelled": "Cancelled", "expired": "Expired",
}
STATUS_LABELS = {
    "draft": "draft", "awaiting_approval": "awaiting approval",
    "scheduled": "scheduled", "running": "sending", "paused": "paused",
    "done": "done", "cancelled": "cancelled",
}


def progress_of(view: BroadcastView) -> dict[str, Any]:
    """What the progress box shows (also its JSON for the live updates)."""
    stats = view.stats
    by_status = dict(stats.by_status) if stats else {}
    total = (stats.total if stats else 0) or view.recipients  # awaiting approval: nothing queued yet
    done = stats.done if stats else 0
    status = "waiting for quiet hours to end" if view.waiting_for_quiet_hours else STATUS_LABELS.get(
        view.status, view.status)
    return {
        "id": view.id,
        "status": view.status,
        "status_label": status,
        "total": total,
        "done": done,
        "percent": round(100 * done / total) if total else 0,
        "parts_sent": stats.parts_sent if stats else 0,
        "replies": stats.replies if stats else 0,
        **{state: by_status.get(state, 0) for state in STATE_LABELS},
    }


def _get(service: BroadcastService, broadcast_id: int, request: Request) -> BroadcastView | Response:
    try:
        return service.get(broadcast_id)
    except NotFound:
        return page(request, "error.html", status_code=404, title="No such broadcast",
                    message=f"There is no broadcast number {broadcast_id}.")


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcasts(request: Request, _session: SignedIn, services: Services_) -> Response:
    views = broadcast_service(services).list(limit=200, hours=False)
    return page(request, "broadcasts.html", title="Broadcasts",
                rows=[(v, progress_of(v)) for v in views], status_labels=STATUS_LABELS)


@router.get("/broadcasts/{broadcast_id:int}", response_class=HTMLResponse)
def broadcast(request: Request, broadcast_id: BroadcastId, _session: SignedIn, services: Services_) -> Response:
    service = broadcast_service(services)
    view = _get(service, broadcast_id, request)
    if isinstance(view, Response):
        return view
    with read_tx(services.queue.engine) as tx:
        problems = stats_db.broadcast_problems(tx, broadcast_id, limit=50)
    charts = broadcast_charts(view.stats, ZoneInfo(services.settings.broadcasts.timezone))
    return page(request, "broadcast.html", title=view.name, b=view, progress=progress_of(view),
                labels=STATE_LABELS, problems=problems, charts=charts)


@router.get("/broadcasts/{broadcast_id:int}/progress")
def progress(broadcast_id: BroadcastId, _session: SignedIn, services: Services_) -> JSONResponse:
    try:
        view = broadcast_service(services).get(broadcast_id, hours=False)
    except NotFound:
        return JSONResponse({"detail": f"no broadcast {broadcast_id}"}, status_code=404)
    return JSONResponse(progress_of(view), headers={"Cache-Control": "no-store"})


def broadcast_action(request: Request, broadcast_id: int, session: Session, verb: str, act: Callable[[], str],
                     *, refused: tuple[type[Exception], ...] = (InvalidState,)) -> Response:
    """A broadcast page's button: run ``act`` (it returns what to tell the user) and go back to
    the broadcast; one that does not exist shows the 404 page, a ``refused`` error comes back
    as the reason it was not done. Any other error propagates."""
    try:
        message = act()
    except NotFound:
        return page(request, "error.html", status_code=404, title="No such broadcast",
                    message=f"There is no broadcast number {broadcast_id}.")
    except refused as exc:
        return redirect(f"/broadcasts/{broadcast_id}", flash=f"Not done: {exc}.")
    log.info("web: %s: broadcast %d %s", session.user.username, broadcast_id, verb)
    return redirect(f"/broadcasts/{broadcast_id}", flash=message)


def _act(request: Request, broadcast_id: int, services: Services, session: Session, verb: str) -> Response:
    service = broadcast_service(services)
    actor = Actor.user(session.user.username)

    def act() -> str:
        if verb == "pause":
            service.pause(broadcast_id, actor=actor)
            return "Paused: nothing more leaves until you resume."
        if verb == "resume":
            service.resume(broadcast_id, actor=actor)
            return "Resumed."
        service.cancel(broadcast_id, by=f"web:{session.user.username}", actor=actor)
        return "Cancelled: messages not yet sent will not be sent."

    return broadcast_action(request, broadcast_id, session, verb, act)


@router.post("/broadcasts/{broadcast_id:int}/pause")
def pause(request: Request, broadcast_id: BroadcastId, session: SignedIn, services: Services_,
          _form: CheckedForm) -> Response:
    return _act(request, broadcast_id, services, session, "pause")


@router.post("/broadcasts/{broadcast_id:int}/resume")
def resume(request: Request, broadcast_id: BroadcastId, session: SignedIn, services: Services_,
           _form: CheckedForm) -> Response:
    return _act(request, broadcast_id, services, session, "resume")


@router.post("/broadcasts/{broadcast_id:int}/cancel")
def cancel(request: Request, broadcast_id: BroadcastId, session: SignedIn, services: Services_,
           _form: CheckedForm) -> Response:
    return _act(request, broadcast_id, services, session, "cancel")
