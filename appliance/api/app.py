"""The FastAPI app factory: :func:`create_app`."""

from __future__ import annotations

import abc

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from appliance import __version__
from appliance.api.auth import authenticate
from appliance.audit import ClientAddress
from appliance.api.docs import install_docs
from appliance.api.metrics import Metrics
from appliance.api.problems import PROBLEM_JSON, ApiProblem, Problem, install_handlers
from appliance.api.routes import ROUTERS
from appliance.api.services import Services

__all__ = ["API_PREFIX", "MAX_REQUEST_BYTES", "create_app"]

MAX_REQUEST_BYTES = 2 * 1024 * 1024
API_PREFIX = "/v1"

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
    {"name": "privacy", "description": "Per-number privacy requests: export everything stored, erase it."},
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
Under `/v1` the key is checked first: without a valid one the answer is 401, whatever else
is wrong with the request.
"""


class _AppMiddleware(abc.ABC):
    """A middleware that reads the app it belongs to (``owner``: its state and handlers);
    :meth:`handle` sees only HTTP requests for which :meth:`concerns` is true."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    def concerns(self, scope: Scope) -> bool:
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.concerns(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @abc.abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request this middleware concerns."""


class _CatchAll(_AppMiddleware):
    """Answers an exception no handler took with the app's handler for its type (for
    ``Exception``: a 500 problem, logged once with its traceback) instead of letting it reach the server,
    which would log it again and drop the keep-alive connection. Outermost of the app's
    middleware, so errors in the others are caught too."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # half an answer is out: only closing the connection tells the client
                raise
            # The most specific handler the app has: a database that stopped answering
            # while a middleware read the key is a 503, like anywhere else.
            handlers = self.owner.exception_handlers
            handler = next(handlers[t] for t in type(exc).__mro__ if t in handlers)
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


class _AuthFirst(_AppMiddleware):
    """Checks the API key of every request under ``/v1`` before routing, body parsing and
    the body-size limit: without a valid key, 401 whatever else the request holds. The key
    found is kept in the request's state, where :func:`appliance.api.auth.require` finds it."""

    def concerns(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return path == API_PREFIX or path.startswith(API_PREFIX + "/")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio

        services: Services = self.owner.state.services
        header = Headers(scope=scope).get("authorization")
        try:
            key = await anyio.to_thread.run_sync(authenticate, services, header)
        except ApiProblem as problem:
            await problem.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)


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
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.services = services
    metrics = Metrics(services)
    app.state.metrics = metrics
    services.metrics = metrics
    install_handlers(app)
    install_docs(app)
    for router in ROUTERS:
        app.include_router(router)
    # Each added middleware wraps the ones before: requests meet _CatchAll, then _AuthFirst.
    app.add_middleware(_BodyLimit, limit=max_request_bytes)
    app.add_middleware(_AuthFirst, owner=app)
    app.add_middleware(_CatchAll, owner=app)
    app.add_middleware(ClientAddress)  # the audit trail's "from where"
    app.state.max_request_bytes = max_request_bytes
    _problem_schemas_in_openapi(app)
    return app


def _problem_schemas_in_openapi(app: FastAPI) -> None:
    """Every error response in the spec is ``application/problem+json`` with the
    :class:`Problem` schema: FastAPI documents a response ``model`` (and its own 422) under
    ``application/json``, and its ``HTTPValidationError`` is not what the API sends."""
    build = app.openapi
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    for code, response in operation.get("responses", {}).items():
                        if str(code)[:1] in ("4", "5"):
                            response["content"] = {PROBLEM_JSON: problem}
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
            schemas.update(schemas["Problem"].pop("$defs", {}))
            text = repr(spec["paths"])
            for unused in ("HTTPValidationError", "ValidationError"):
                if f"#/components/schemas/{unused}'" not in text:
                    schemas.pop(unused, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
