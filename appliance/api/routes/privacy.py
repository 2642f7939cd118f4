"""``/v1/privacy/{number}``: per-number privacy requests (export, erase). Admin scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from appliance.api.deps import AdminKey, ServicesDep
from appliance.audit import Actor
from appliance.api.problems import problem_responses
from appliance.api.routes.messages import normalise
from appliance.privacy import erase_number, export_number

__all__ = ["router"]

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

_NUMBER = Path(max_length=64, description="The number as typed (URL-encode the `+` as `%2B`).")


def _number(number: Annotated[str, _NUMBER], services: ServicesDep) -> str:
    return normalise(number, services, "number")


# After the key in each signature: a caller without one is told 401 whatever the number.
Number = Annotated[str, Depends(_number)]


@router.get(
    "/{number}",
    summary="Everything stored about a number",
    responses=problem_responses(401, 403, 422),
)
def export(key: AdminKey, number: Number, services: ServicesDep) -> dict[str, Any]:
    """The messages sent to it, the texts it sent, its contact record (with groups), whether
    it is opted out and its consent history. Times are UNIX seconds."""
    return export_number(services.queue.engine, number, actor=Actor.key(key.name))


@router.post(
    "/{number}/erase",
    summary="Erase what is stored about a number",
    responses=problem_responses(401, 403, 422),
)
def erase(key: AdminKey, number: Number, services: ServicesDep) -> dict[str, Any]:
    """Deletes the contact (and its group memberships), cancels messages still queued to
    the number and erases the bodies of its messages and of the texts it sent (they read as
    empty, `redacted: true`). An opted-out number stays opted out, and the consent log
    stays: the number is still never texted."""
    r = erase_number(services.queue.engine, number, by=f"api:{key.name}", actor=Actor.key(key.name))
    return {
        "number": r.number, "contact_deleted": r.contact_deleted, "messages_cancelled": r.messages_cancelled,
        "message_bodies": r.message_bodies, "inbound_bodies": r.inbound_bodies,
        "webhook_payloads": r.webhook_payloads, "emails": r.emails, "fragments": r.fragments,
        "still_opted_out": r.still_opted_out,
    }
