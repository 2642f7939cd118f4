"""``/v1/broadcasts``: preview, create, start, pause, resume, cancel, progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from appliance.api.auth import get_services, require
from appliance.api.keys import ApiKey
from appliance.api.problems import problem_responses
from appliance.api.routes.contacts import contact_book
from appliance.api.schemas_broadcasts import (
    BroadcastList,
    BroadcastOut,
    BroadcastRequest,
    PreviewOut,
    StartRequest,
)
from appliance.api.services import Services
from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec
from appliance.queue import RateLimits

__all__ = ["broadcast_service", "router"]

router = APIRouter(prefix="/v1/broadcasts", tags=["broadcasts"])

BroadcastId = Annotated[int, Path(ge=1, description="The broadcast id.")]


def _limits(services: Services) -> list[RateLimits]:
    """Caps of the modems online now; of every configured modem when none is."""
    workers: list[Any] = list(getattr(services.dispatcher, "workers", []))
    online = [w.limits for w in workers if getattr(w.modem, "online", False)]
    if online:
        return online
    if workers:
        return [w.limits for w in workers]
    return [RateLimits.from_config(m) for m in services.settings.modems]


def broadcast_service(services: Services) -> BroadcastService:
    return BroadcastService(
        services.queue, contact_book(services),
        footer=services.settings.broadcasts.opt_out_footer, limits=lambda: _limits(services),
    )


Service = Annotated[BroadcastService, Depends(lambda services=Depends(get_services): broadcast_service(services))]


def _spec(body: BroadcastRequest) -> BroadcastSpec:
    a = body.audience
    return BroadcastSpec(
        template=body.template,
        audience=Audience(tuple(a.groups), tuple(a.numbers), a.csv, tuple(a.csv_map.items())),
        kind=body.kind, name=body.name, send_at=body.send_at.timestamp() if body.send_at else None,
        priority=body.priority, validity_s=body.validity_s, allow_missing=body.allow_missing,
    )


@router.post("/preview", response_model=PreviewOut, summary="Preview a broadcast without storing it",
             responses=problem_responses(401, 403, 404, 413, 422))
def preview_request(body: BroadcastRequest, _key: Annotated[ApiKey, Depends(require("send"))],
                    service: Service, samples: Annotated[int, Query(ge=0, le=100)] = 5) -> PreviewOut:
    """Rendered samples, recipients after opt-outs, invalid numbers, total parts and
    encodings (opt-out footer included for marketing), missing fields, and how long it
    takes under the modems' caps (quiet hours included for marketing)."""
    return PreviewOut.of(service.preview(_spec(body), samples=samples))


@router.post("", status_code=201, response_model=BroadcastOut, summary="Create a broadcast (a draft)",
             responses=problem_responses(401, 403, 404, 409, 413, 422))
def create_broadcast(body: BroadcastRequest, key: Annotated[ApiKey, Depends(require("send"))],
                     service: Service) -> BroadcastOut:
    """A draft to preview (`GET …/{id}/preview`) and start (`POST …/{id}/start`); with
    `"start": true` it is started at once (if it cannot start, the error is returned and
    the draft is left `cancelled`)."""
    if body.start:
        return BroadcastOut.of(service.create_and_start(_spec(body), created_by=f"api:{key.name}"))
    return BroadcastOut.of(service.create(_spec(body), created_by=f"api:{key.name}"))


@router.get("", response_model=BroadcastList, summary="Broadcasts, newest first",
            responses=problem_responses(401, 403, 422))
def list_broadcasts(_key: Annotated[ApiKey, Depends(require("read"))], service: Service,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> BroadcastList:
    return BroadcastList(items=[BroadcastOut.of(v) for v in service.list(limit=limit)])


@router.get("/{broadcast_id}", response_model=BroadcastOut, summary="A broadcast with its progress and stats",
            responses=problem_responses(401, 403, 404, 422))
def get_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("read"))],
                  service: Service) -> BroadcastOut:
    """`stats`: messages by status (queued, sent, delivered, failed, suppressed...),
    replies received from the recipients since the start, and sends per hour."""
    return BroadcastOut.of(service.get(broadcast_id))


@router.get("/{broadcast_id}/preview", response_model=PreviewOut, summary="Preview a stored broadcast",
            responses=problem_responses(401, 403, 404, 422))
def preview_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("read"))],
                      service: Service, samples: Annotated[int, Query(ge=0, le=100)] = 5) -> PreviewOut:
    return PreviewOut.of(service.preview(service.spec_of(broadcast_id), samples=samples))


@router.post("/{broadcast_id}/start", response_model=BroadcastOut, summary="Start a draft broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def start_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                    service: Service, body: StartRequest | None = None) -> BroadcastOut:
    """Renders and queues every message at once (one transaction). 422 if recipients lack
    a field the template needs (unless `allow_missing`), or a text is too long; 409 if it
    was started already."""
    return BroadcastOut.of(service.start(broadcast_id, allow_missing=body.allow_missing if body else None))


@router.post("/{broadcast_id}/pause", response_model=BroadcastOut, summary="Pause a running broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def pause_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                    service: Service) -> BroadcastOut:
    """Messages not yet handed to a modem wait (still `queued`); those sending finish."""
    return BroadcastOut.of(service.pause(broadcast_id))


@router.post("/{broadcast_id}/resume", response_model=BroadcastOut, summary="Resume a paused broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def resume_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                     service: Service) -> BroadcastOut:
    return BroadcastOut.of(service.resume(broadcast_id))


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut, summary="Cancel a broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def cancel_broadcast(broadcast_id: BroadcastId, key: Annotated[ApiKey, Depends(require("send"))],
                     service: Service) -> BroadcastOut:
    """Every message still queued becomes `cancelled`; those sending finish."""
    return BroadcastOut.of(service.cancel(broadcast_id, by=f"api:{key.name}"))
