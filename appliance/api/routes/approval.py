"""``POST /v1/broadcasts/{id}/approve`` and ``/reject``: an admin decides on a broadcast
``awaiting_approval`` (docs/architecture.md, "Audit trail and approval")."""

from __future__ import annotations

from fastapi import APIRouter

from appliance.api.deps import AdminKey, ServicesDep, broadcast_service, checked_preview
from appliance.api.problems import ApiProblem, problem_responses
from appliance.api.routes.broadcasts import BroadcastId
from appliance.api.schemas_broadcasts import BroadcastOut
from appliance.audit import Actor
from appliance.broadcasts import ApprovalRefused

__all__ = ["router"]

router = APIRouter(prefix="/v1/broadcasts", tags=["broadcasts"])


def _refused(exc: ApprovalRefused) -> ApiProblem:
    return ApiProblem(403, "forbidden", str(exc))


@router.post("/{broadcast_id:int}/approve", response_model=BroadcastOut,
             summary="Approve a broadcast awaiting approval (it starts)",
             responses=problem_responses(401, 403, 404, 409, 422))
def approve_broadcast(broadcast_id: BroadcastId, key: AdminKey,
                      services: ServicesDep) -> BroadcastOut:
    """Admin scope. The broadcast starts as a start does (with the audience as it is now);
    the audit trail records who asked and who approved. 403 for whoever asked for it
    (someone else must approve); 409 unless it is `awaiting_approval`."""
    service = broadcast_service(services)
    checked_preview(services, service, service.spec_of(broadcast_id))
    try:
        return BroadcastOut.of(service.approve(broadcast_id, Actor.key(key.name)))
    except ApprovalRefused as exc:
        raise _refused(exc) from None


@router.post("/{broadcast_id:int}/reject", response_model=BroadcastOut,
             summary="Reject a broadcast awaiting approval (it is cancelled)",
             responses=problem_responses(401, 403, 404, 409, 422))
def reject_broadcast(broadcast_id: BroadcastId, key: AdminKey,
                     services: ServicesDep) -> BroadcastOut:
    """Admin scope. Nothing of it was queued; it becomes `cancelled`. 403 for whoever
    asked for it (they may cancel it instead); 409 unless it is `awaiting_approval`."""
    try:
        return BroadcastOut.of(broadcast_service(services).reject(broadcast_id, Actor.key(key.name)))
    except ApprovalRefused as exc:
        raise _refused(exc) from None
