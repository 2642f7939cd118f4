"""``/healthz`` (no key) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from appliance.api.deps import ReadKey, ServicesDep
from appliance.api.problems import problem_responses
from appliance.api.schemas import Health
from appliance.health import evaluate

__all__ = ["router"]

_log = logging.getLogger(__name__)

router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness and a summary of health",
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def healthz(services: ServicesDep) -> JSONResponse:
    """`degraded` with the reasons: no modem online, a modem offline or in error (named), a
    stuck queue, a dead or stuck worker thread, an almost full disk, a database that fails.
    The status code is 200 unless the database cannot be used (503). `info` tells facts
    that are not faults, such as messages recovered as `unknown` at start-up."""
    report = evaluate(services)
    health = Health(
        status="degraded" if report.reasons else "ok",
        reasons=report.reasons,
        modems_online=report.modems_online,
        modems_total=report.modems_total,
        queue_depth=report.queue_depth,
        uptime_s=round(max(0.0, time.time() - services.started_at), 3),
        info=report.info,
        recovered_unknown=report.recovered_unknown,
        disk_free_mb=round(report.disk.free_mb, 1) if report.disk is not None else None,
    )
    return JSONResponse(health.model_dump(), status_code=200 if report.database_ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format."},
        **problem_responses(401, 403),
    },
)
def metrics(request: Request, _key: ReadKey) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
