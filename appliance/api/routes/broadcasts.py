"""``/v1/broadcasts``: preview, create, start, pause, resume, cancel, progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from appliance.api.auth import get_services, require
from appliance.api.keys import ApiKey
from appliance.api.params import record_id
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
from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec, Preview
from appliance.queue import InvalidRequest, RateLimits

__all__ = ["broadcast_service", "checked_preview", "router"]

router = APIRouter(prefix="/v1/broadcasts", tags=["broadcasts"])

BroadcastId = record_id("broadcast")


def _estimated(services: Services) -> list[Any]:
    """The workers of the modems online now; of every modem when none is."""
    workers: list[Any] = list(getattr(services.dispatcher, "workers", []))
    return [w for w in workers if getattr(w.modem, "online", False)] or workers


def _limits(services: Services) -> list[RateLimits]:
    """Caps of the modems online now; of every configured modem when none is."""
    workers = _estimated(services)
    if workers:
        return [w.limits for w in workers]
    return [RateLimits.from_config(m) for m in services.settings.modems]


def _sims(services: Services) -> list[str]:
    """The SIMs (send-log keys) of :func:`_limits`' modems, in its order (sticky sender)."""
    workers = _estimated(services)
    if workers:
        return [str(w.sim) for w in workers]
    return [m.iccid or m.name for m in services.settings.modems]


def broadcast_service(services: Services) -> BroadcastService:
    return BroadcastService(
        services.queue, contact_book(services),
        footer=services.settings.broadcasts.opt_out_footer, limits=lambda: _limits(services),
        sims=lambda: _sims(services),
    )


def checked_preview(services: Services, service: BroadcastService, spec: BroadcastSpec,
                    *, samples: int = 0) -> Preview:
    """``service.preview(spec)``, refused (``InvalidRequest`` naming ``audience``) when the
    audience has more recipients than ``[broadcasts] max_recipients``."""
    preview = service.preview(spec, samples=samples)
    cap = services.settings.broadcasts.max_recipients
    if preview.recipients > cap:
        raise InvalidRequest(
            f"audience: {preview.recipients:,} recipients; a broadcast may have at most {cap:,} "
            "([broadcasts] max_recipients): split the audience into several broadcasts"
        )
    return preview


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
                    services: Annotated[Services, Depends(get_services)], service: Service,
                    samples: Annotated[int, Query(ge=0, le=100)] = 5) -> PreviewOut:
    """Rendered samples, recipients after opt-outs, invalid numbers, total parts and
    encodings (opt-out footer included for marketing), missing fields, and how long it
    takes under the modems' caps (quiet hours included for marketing). 422 naming
    `audience` over `[broadcasts] max_recipients` (10,000 by default)."""
    return PreviewOut.of(checked_preview(services, service, _spec(body), samples=samples))


@router.post("", status_code=201, response_model=BroadcastOut, summary="Create a broadcast (a draft)",
             responses=problem_responses(401, 403, 404, 409, 413, 422))
def create_broadcast(body: BroadcastRequest, key: Annotated[ApiKey, Depends(require("send"))],
                     services: Annotated[Services, Depends(get_services)], service: Service) -> BroadcastOut:
    """A draft to preview (`GET …/{id}/preview`) and start (`POST …/{id}/start`); with
    `"start": true` it is started at once (if it cannot start, the error is returned and
    the draft is left `cancelled`). An audience over `[broadcasts] max_recipients`
    recipients (10,000 by default) is refused with 422 naming `audience`."""
    spec = _spec(body)
    checked_preview(services, service, spec)
    if body.start:
        return BroadcastOut.of(service.create_and_start(spec, created_by=f"api:{key.name}"))
    return BroadcastOut.of(service.create(spec, created_by=f"api:{key.name}"))


@router.get("", response_model=BroadcastList, summary="Broadcasts, newest first",
            responses=problem_responses(401, 403, 422))
def list_broadcasts(_key: Annotated[ApiKey, Depends(require("read"))], service: Service,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> BroadcastList:
    return BroadcastList(items=[BroadcastOut.of(v) for v in service.list(limit=limit)])


@router.get("/{broadcast_id:int}", response_model=BroadcastOut, summary="A broadcast with its progress and stats",
            responses=problem_responses(401, 403, 404, 422))
def get_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("read"))],
                  service: Service) -> BroadcastOut:
    """`stats`: messages by status (queued, sent, delivered, failed, suppressed...),
    replies received from the recipients since the start, and sends per hour."""
    return BroadcastOut.of(service.get(broadcast_id))


@router.get("/{broadcast_id:int}/preview", response_model=PreviewOut, summary="Preview a stored broadcast",
            responses=problem_responses(401, 403, 404, 422))
def preview_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("read"))],
                      service: Service, samples: Annotated[int, Query(ge=0, le=100)] = 5) -> PreviewOut:
    return PreviewOut.of(service.preview(service.spec_of(broadcast_id), samples=samples))


@router.post("/{broadcast_id:int}/start", response_model=BroadcastOut, summary="Start a draft broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def start_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                    services: Annotated[Services, Depends(get_services)], service: Service,
                    body: StartRequest | None = None) -> BroadcastOut:
    """Renders and queues every message at once (one transaction). 422 if recipients lack
    a field the template needs (unless `allow_missing`), a text is too long, or the
    audience has grown over `[broadcasts] max_recipients`; 409 if it was started already."""
    checked_preview(services, service, service.spec_of(broadcast_id))
    return BroadcastOut.of(service.start(broadcast_id, allow_missing=body.allow_missing if body else None))


@router.post("/{broadcast_id:int}/pause", response_model=BroadcastOut, summary="Pause a running broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def pause_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                    service: Service) -> BroadcastOut:
    """Messages not yet handed to a modem wait (still `queued`); those sending finish."""
    return BroadcastOut.of(service.pause(broadcast_id))


@router.post("/{broadcast_id:int}/resume", response_model=BroadcastOut, summary="Resume a paused broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def resume_broadcast(broadcast_id: BroadcastId, _key: Annotated[ApiKey, Depends(require("send"))],
                     service: Service) -> BroadcastOut:
    return BroadcastOut.of(service.resume(broadcast_id))


@router.post("/{broadcast_id:int}/cancel", response_model=BroadcastOut, summary="Cancel a broadcast",
             responses=problem_responses(401, 403, 404, 409, 422))
def cancel_broadcast(broadcast_id: BroadcastId, key: Annotated[ApiKey, Depends(require("send"))],
                     service: Service) -> BroadcastOut:
    """Every message still queued becomes `cancelled`; those sending finish."""
    return BroadcastOut.of(service.cancel(broadcast_id, by=f"api:{key.name}"))
