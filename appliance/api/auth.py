"""Bearer-key authentication and scopes.

``Depends(require("send"))`` in a route: 401 (with ``WWW-Authenticate: Bearer``) when the
key is missing, malformed, unknown or revoked; 403 when it lacks the scope (``admin``
allows everything). The key itself is never logged.

Under ``/v1`` the key is checked before anything else (a middleware of
:func:`appliance.api.create_app` calls :func:`authenticate`):
a request without a valid key gets 401 whatever its body, its path parameters or its size;
``require`` then finds the key on the request instead of checking it again.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from appliance.api.keys import ApiKey
from appliance.api.problems import ApiProblem
from appliance.api.services import Services

__all__ = ["authenticate", "get_services", "require"]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made with `appliance keys create NAME --scope ...`.",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sms-appliance"'}


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers=_CHALLENGE)


def authenticate(services: Services, authorization: str | None) -> ApiKey:
    """The live key of an ``Authorization`` header, or :class:`ApiProblem` 401 saying why not."""
    if authorization is None:
        raise _unauthorized("this route needs an API key: send 'Authorization: Bearer <key>'")
    scheme, secret = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <key>'")
    key = services.keys.verify(secret.strip())
    if key is None:
        raise _unauthorized(
            "the API key is not valid (unknown or revoked); make one with 'appliance keys create'"
        )
    return key


def require(scope: str) -> Callable[..., ApiKey]:
    """A dependency returning the request's :class:`ApiKey` if it allows ``scope``."""

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # documents the scheme
        services: Services = Depends(get_services),
    ) -> ApiKey:
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if key is None:
            key = authenticate(services, request.headers.get("authorization"))
        if not key.allows(scope):
            have = ", ".join(sorted(key.scopes)) or "none"
            raise ApiProblem(
                403, "forbidden",
                f"this route needs the {scope!r} scope; key {key.name!r} has: {have}",
            )
        request.state.api_key = key
        return key

    dependency.__name__ = f"require_{scope}"
    return dependency
