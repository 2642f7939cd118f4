"""Approval of big sends on the web pages: who needs it when starting a broadcast, and the
approve / reject buttons of a broadcast ``awaiting_approval`` (admins other than the one
who asked). docs/architecture.md, "Audit trail and approval"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from appliance.api.params import record_id
from appliance.api.deps import CheckedForm, ServicesDep, StaffAdmin, broadcast_service, checked_preview
from appliance.api.services import Services
from appliance.audit import Actor
from appliance.broadcasts import ApprovalRefused, approval_limit
from appliance.queue import InvalidRequest, InvalidState
from appliance.web.pages.broadcasts import broadcast_action
from appliance.web.render import page
from appliance.web.users import Session

__all__ = ["router", "start_options"]

router = APIRouter(include_in_schema=False)

BroadcastId = record_id("broadcast")


def start_options(services: Services, session: Session) -> dict[str, Any]:
    """What a start by the signed-in user passes to ``BroadcastService.start`` /
    ``create_and_start``: who acts, and the approval threshold unless they are an admin."""
    return {"actor": Actor.user(session.user.username),
            "approval_over": approval_limit(services.settings.broadcasts.approval_over, admin=session.user.is_admin)}


def _decide(request: Request, broadcast_id: int, services: Services, session: Session, verb: str) -> Response:
    service = broadcast_service(services)
    actor = Actor.user(session.user.username)

    def decide() -> str:
        if verb == "approve":
            checked_preview(services, service, service.spec_of(broadcast_id))
            view = service.approve(broadcast_id, actor)
            return f"Approved: sending {view.recipients:,} message(s)."
        service.reject(broadcast_id, actor)
        return "Rejected: nothing of it will be sent."

    try:
        return broadcast_action(request, broadcast_id, session, verb, decide, refused=(InvalidState, InvalidRequest))
    except ApprovalRefused:
        return page(request, "error.html", status_code=403, title="Another admin must decide",
                    message="You asked for this broadcast, so you cannot approve or reject it yourself: another "
                            "admin must. You can still cancel it.")


@router.post("/broadcasts/{broadcast_id:int}/approve")
def approve(request: Request, broadcast_id: BroadcastId, session: StaffAdmin, services: ServicesDep,
            _form: CheckedForm) -> Response:
    return _decide(request, broadcast_id, services, session, "approve")


@router.post("/broadcasts/{broadcast_id:int}/reject")
def reject(request: Request, broadcast_id: BroadcastId, session: StaffAdmin, services: ServicesDep,
           _form: CheckedForm) -> Response:
    return _decide(request, broadcast_id, services, session, "reject")
