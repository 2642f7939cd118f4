"""The FastAPI app factory: :func:`create_app`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from appliance import __version__
from appliance.api.metrics import Metrics
from appliance.api.problems import PROBLEM_JSON, ApiProblem, install_handlers
from appliance.api.routes import ROUTERS
from appliance.api.services import Services

__all__ = ["MAX_REQUEST_BYTES", "create_app"]

MAX_REQUEST_BYTES = 2 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TAGS = [
    {"name": "messages", "description": "Send SMS and follow each message (and each of its parts) "
                                        "from `queued` to `delivered`."},
    {"name": "inbound", "description": "SMS received by the modems, reassembled."},
    {"name": "modems", "description": "The modems: state, signal, identity, counters and send budget."},
    {"name": "opt-outs", "description": "The suppression list: numbers that are never sent to."},
    {"name": "segments", "description": "How a text is encoded and split before sending it."},
    {"name": "system", "description": "Health and Prometheus metrics."},
    {"name": "contacts", "description": "The contact book: numbers, names, free fields; CSV import and export."},
    {"name": "groups", "description": "Audiences: static members plus a filter on fields."},
    {"name": "broadcasts", "description": "Personalised mass texts: preview, start, pause, resume, cancel, "
                                          "progress."},
]

_DESCRIPTION = """\
Local REST API of the SMS appliance. Authenticate with `Authorization: Bearer <key>`; keys
are made with `appliance keys create NAME --scope send --scope read` (scopes: `send`,
`read`, `admin`, which allows everything). Phone numbers are accepted in E.164 or in the
appliance's default region and always shown in E.164. Every error is
`application/problem+json` with a `detail`; validation errors list each bad `field`.
"""


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413: by ``Content-Length``, or for a
    chunked upload by reading it (up to the limit) before the app sees it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                await self._problem().response()(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._problem().response()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _problem(self) -> ApiProblem:
        return ApiProblem(
            413, "request-too-large",
            f"the request body is over {self.limit // (1024 * 1024)} MB; split it into several requests",
        )


def create_app(services: Services, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The REST API over ``services`` (docs/architecture.md, "Interfaces"); docs at ``/docs``.

    Also builds the app's :class:`Metrics` and sets it as ``services.metrics`` (the daemon
    reports send latencies there) and as ``app.state.metrics``.
    """
    app = FastAPI(
        title="SMS appliance",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    metrics = Metrics(services)
    app.state.metrics = metrics
    services.metrics = metrics
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(_BodyLimit, limit=max_request_bytes)
    app.state.max_request_bytes = max_request_bytes
    _problem_schemas_in_openapi(app)
    return app


def _problem_schemas_in_openapi(app: FastAPI) -> None:
    """FastAPI documents a response ``model`` under ``application/json``; error responses
    are ``application/problem+json``, so move the schema there."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if PROBLEM_JSON in content and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
