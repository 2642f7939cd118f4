"""``GET /v1/audit``: the audit trail, newest first, with filters (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from appliance.api.deps import AdminKey, ServicesDep
from appliance.api.problems import problem_responses
from appliance.audit import AuditEvent, AuditFilter, AuditLog
from appliance.db.rows import as_datetime, as_timestamp

__all__ = ["AuditEventOut", "AuditPage", "router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_kind: str = Field(description="user (web), key (API), cli (the command line, as the OS user) or system.")
    actor: str = Field(description="The web user's name, the API key's name or the OS user.")
    address: str | None = Field(description="The client's IP address (for the command line: local:USER).")
    action: str = Field(description="A dotted verb: message.send, broadcast.approve, optout.add, key.create ...")
    target: str | None = Field(description="What it acted on: a message or broadcast id, a masked number ...")
    detail: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventOut:
        return cls(id=e.id, at=as_datetime(e.at), actor_kind=e.actor_kind, actor=e.actor,  # type: ignore[arg-type]
                   address=e.address, action=e.action, target=e.target, detail=e.detail)


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


@router.get("", response_model=AuditPage, summary="The audit trail, newest first",
            responses=problem_responses(401, 403, 422))
def list_audit(
    _key: AdminKey,
    services: ServicesDep,
    actor: Annotated[str | None, Query(max_length=200, description="Exactly this user, key or OS user name.")] = None,
    action: Annotated[str | None, Query(max_length=64, description=(
        "Exactly this action (`broadcast.approve`), or every action of a kind (`broadcast.`)."))] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601; naive means UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    target: Annotated[str | None, Query(max_length=200, description="Exactly this target.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> AuditPage:
    """Every change made by a web user, an API key or the command line: who, when, from
    which address, what and on what. Kept `[retention] audit_days` (730 by default)."""
    where = AuditFilter(actor=actor or None, action=action or None, since=as_timestamp(since),
                        until=as_timestamp(until), target=target or None)
    page = AuditLog(services.queue.engine).list(where, limit=limit, cursor=cursor)
    return AuditPage(items=[AuditEventOut.of(e) for e in page.items], next_cursor=page.next_cursor)
