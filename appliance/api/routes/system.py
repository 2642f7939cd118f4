"""``/healthz`` (no key) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from appliance.api.auth import get_services, require
from appliance.api.keys import ApiKey
from appliance.api.problems import problem_responses
from appliance.api.schemas import Health
from appliance.api.services import Services
from appliance.api.store import StoreStats

__all__ = ["router"]

_log = logging.getLogger(__name__)

router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness and a summary of health",
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def healthz(services: Annotated[Services, Depends(get_services)]) -> JSONResponse:
    """`degraded` when no modem is online (messages wait in the queue) or the database
    fails; the status code is 200 unless the database cannot be reached (503)."""
    reasons: list[str] = []
    modems = list(services.modems)
    online = sum(1 for m in modems if m.online)
    if not modems:
        reasons.append("no modem is configured")
    elif online == 0:
        reasons.append("no modem is online")
    depth: int | None
    try:
        depth = StoreStats(services.queue.engine).ping()
    except Exception as exc:
        _log.error("health check: the database did not answer: %s", exc)
        reasons.append(f"the database did not answer: {exc.__class__.__name__}")
        depth = None
    health = Health(
        status="degraded" if reasons else "ok",
        reasons=reasons,
        modems_online=online,
        modems_total=len(modems),
        queue_depth=depth,
        uptime_s=round(max(0.0, time.time() - services.started_at), 3),
    )
    return JSONResponse(health.model_dump(), status_code=503 if depth is None else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format."},
        **problem_responses(401, 403),
    },
)
def metrics(request: Request, _key: Annotated[ApiKey, Depends(require("read"))]) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
