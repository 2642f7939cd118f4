"""Bearer-key authentication and scopes.

``Depends(require("send"))`` in a route: 401 (with ``WWW-Authenticate: Bearer``) when the
key is missing, malformed, unknown or revoked; 403 when it lacks the scope (``admin``
allows everything). The key itself is never logged.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from appliance.api.keys import ApiKey
from appliance.api.problems import ApiProblem
from appliance.api.services import Services

__all__ = ["get_services", "require"]

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


def require(scope: str) -> Callable[..., ApiKey]:
    """A dependency returning the request's :class:`ApiKey` if it allows ``scope``."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        services: Services = Depends(get_services),
    ) -> ApiKey:
        if credentials is None:
            if "authorization" in request.headers:
                raise _unauthorized("the Authorization header must be 'Bearer <key>'")
            raise _unauthorized("this route needs an API key: send 'Authorization: Bearer <key>'")
        key = services.keys.verify(credentials.credentials.strip())
        if key is None:
            raise _unauthorized(
                "the API key is not valid (unknown or revoked); make one with 'appliance keys create'"
            )
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
