"""Errors as ``application/problem+json`` (RFC 9457).

Every error response carries ``type`` (a URN naming the kind of problem), ``title``,
``status`` and a ``detail`` a person can act on; validation problems add ``errors``, one
``{"field", "detail"}`` per bad field, the field named as a dotted path inside the request
(``to.3``, ``send_at``, ``status``). :class:`ApiProblem` is what the routes raise;
:func:`install_handlers` turns it, FastAPI's validation errors and the queue's typed errors
into problem responses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from appliance.errors import ApplianceError
from appliance.queue import errors as queue_errors

__all__ = [
    "MAX_FIELD_ERRORS",
    "PROBLEM_JSON",
    "ApiProblem",
    "FieldError",
    "Problem",
    "install_handlers",
    "problem_responses",
]

_log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_FIELD_ERRORS = 100  # a 10,000-recipient request in the wrong region must not echo 10,000 errors
_TYPE_PREFIX = "urn:sms-appliance:problem:"


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field inside the request, e.g. `to.2`.")
    detail: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:sms-appliance:problem:validation-error",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "The request is not valid: body: the message text is empty",
                    "errors": [{"field": "body", "detail": "the message text is empty"}],
                }
            ]
        }
    )

    type: str = Field(description="A URN naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong here, in words a person can act on.")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation problems: each invalid field."
    )


class ApiProblem(ApplianceError):
    """An error response to send: ``status``, a ``kind`` slug for ``type``, ``detail``."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers) if headers else None

    @classmethod
    def invalid(cls, errors: Sequence[FieldError], status: int = 422) -> ApiProblem:
        """A validation problem naming each bad field (the first :data:`MAX_FIELD_ERRORS`;
        ``detail`` says how many more there were)."""
        return cls(status, "validation-error", _summary(errors), errors=errors[:MAX_FIELD_ERRORS])

    def response(self) -> JSONResponse:
        body = Problem(
            type=_TYPE_PREFIX + self.kind,
            title=_title(self.status),
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        return JSONResponse(body, status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _summary(errors: Sequence[FieldError]) -> str:
    shown = "; ".join(f"{e.field}: {e.detail}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"The request is not valid: {shown}{more}"


_DESCRIPTIONS = {
    400: "The request cannot be read.",
    401: "No API key, or an unknown or revoked one (`Authorization: Bearer <key>`).",
    403: "The API key lacks the scope this route needs.",
    404: "No such record.",
    409: "The record's state (or an idempotency key) does not allow this.",
    413: "The request body is too large.",
    422: "A field is invalid; `errors` names each one.",
    503: "The database cannot be reached.",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting ``codes`` as problem+json."""
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(code, _title(code)),
            "content": {PROBLEM_JSON: {}},
        }
        for code in codes
    }


# ---------------------------------------------------------------------- validation errors

_SOURCES = ("body", "query", "path", "header", "cookie")


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "to", 2)`` → ``"to.2"``; ``("query", "status")`` → ``"status"``."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if not parts:
        return "request_body" if source == "body" else (source or "request")
    return ".".join(str(p) for p in parts)


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON{': ' + reason if reason else ''}"
    if kind == "missing" and tuple(error.get("loc", ())) == ("body",):
        return "the request needs a JSON body"
    if kind == "missing":
        return "this field is required"
    if kind == "timezone_aware":
        return "give a timezone, e.g. 2030-01-01T09:00:00+00:00 or ...Z"
    msg = str(error.get("msg", "is not valid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def validation_errors(exc: RequestValidationError | ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors():
        loc = error.get("loc", ())
        field = "request_body" if error.get("type") == "json_invalid" else field_name(loc)
        item = (field, _message(error))
        if item not in seen:
            seen.add(item)
            out.append(FieldError(field=item[0], detail=item[1]))
    return out


# ---------------------------------------------------------------------- queue errors

def _invalid_request(exc: queue_errors.InvalidRequest) -> ApiProblem:
    field = exc.field or "request_body"
    return ApiProblem.invalid([FieldError(field=field, detail=exc.detail)])


def from_queue_error(exc: queue_errors.QueueError) -> ApiProblem:
    if isinstance(exc, queue_errors.NotFound):
        return ApiProblem(404, "not-found", str(exc))
    if isinstance(exc, queue_errors.InvalidState):
        return ApiProblem(409, "invalid-state", str(exc))
    if isinstance(exc, queue_errors.DuplicateIdempotencyKey):
        return ApiProblem(409, "idempotency-key-reused", str(exc))
    if isinstance(exc, queue_errors.InvalidRequest):
        return _invalid_request(exc)
    if isinstance(exc, queue_errors.MigrationError):
        return ApiProblem(503, "database-unavailable", f"the database is not usable: {exc}")
    if isinstance(exc, queue_errors.DatabaseUnavailable):
        # Nothing of this request was committed: the client may simply try again.
        return ApiProblem(503, "database-unavailable",
                          f"the {exc.engine} database is not answering ({exc.reason}); nothing was changed, "
                          "try again shortly", headers={"Retry-After": "5"})
    if isinstance(exc, queue_errors.ConstraintViolation):
        return ApiProblem(409, "conflict", f"the request conflicts with a record changed at the same time: {exc}")
    _log.error("queue error without an HTTP mapping: %s", exc)
    return ApiProblem(500, "internal-error", f"the queue refused the request: {exc}")


# ---------------------------------------------------------------------- 405

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path (for ``Allow``:
    Starlette lists only those of the first route that matched the path)."""
    from starlette.routing import Match, Mount

    allowed: list[str] = []
    for method in _METHODS:
        probe = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", ""),
                 "method": method, "headers": [], "query_string": b""}
        for route in request.app.router.routes:
            if not isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL:
                allowed.append(method)
                break
    return allowed


# ---------------------------------------------------------------------- handlers

def install_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""

    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return exc.response()

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return ApiProblem.invalid(validation_errors(exc)).response()

    async def on_queue_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, queue_errors.QueueError)
        return from_queue_error(exc).response()

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"there is no route {request.url.path}; the routes are listed at /docs"
        elif exc.status_code == 405:
            allowed = allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.url.path} does not accept {request.method}; it accepts {headers['Allow']}; see /docs"
        else:
            detail = str(exc.detail)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return ApiProblem(exc.status_code, kind, detail, headers=headers).response()

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled error in the API", exc_info=exc)
        return ApiProblem(
            500, "internal-error", "the appliance hit an internal error; the log has the details"
        ).response()

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(queue_errors.QueueError, on_queue_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
