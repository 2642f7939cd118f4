"""``/v1/inbound``: received messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from appliance.api.deps import ReadKey, ServicesDep
from appliance.api.problems import problem_responses
from appliance.api.routes.messages import normalise
from appliance.api.schemas import InboundMessage, InboundPage

__all__ = ["router"]

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


@router.get(
    "",
    response_model=InboundPage,
    summary="Received messages, newest first",
    responses=problem_responses(401, 403, 422),
)
def list_inbound(
    _key: ReadKey,
    services: ServicesDep,
    sender: Annotated[str | None, Query(alias="from", description="Only from this number (any format).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> InboundPage:
    """Multipart messages appear once, reassembled; `complete` is false when parts were still
    missing when the reassembly timeout passed."""
    number = normalise(sender, services, "from") if sender is not None else None
    page = services.queue.list_inbound(limit=limit, cursor=cursor, sender=number)
    return InboundPage(items=[InboundMessage.of(v) for v in page.items], next_cursor=page.next_cursor)
