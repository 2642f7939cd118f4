"""Mounting the web pages on the API's FastAPI app: :func:`mount_web`."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from appliance.web.auth import SESSION_COOKIE, CsrfRejected, PageForbidden, SignInRequired, WebState
from appliance.web.pages import ROUTERS
from appliance.web.render import page, redirect
from appliance.web.users import Sessions, Users

__all__ = ["STATIC_DIR", "mount_web"]

STATIC_DIR = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def mount_web(app: FastAPI) -> None:
    """Add the staff pages under ``/`` (sign-in at ``/login``) and their files under
    ``/static`` to ``app``, an app from :func:`appliance.api.create_app`."""
    engine = app.state.services.queue.engine
    app.state.web = WebState(users=Users(engine), sessions=Sessions(engine))
    _html_errors_for_pages(app)  # before the pages' own handlers, which it must not wrap
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "your session has ended; sign in again"}, status_code=401)
        from urllib.parse import quote

        target = "/login" if exc.next_path in ("", "/") else f"/login?next={quote(exc.next_path, safe='')}"
        return redirect(target)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        return page(request, "error.html", status_code=403, title="Not allowed", message=str(exc))

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> HTMLResponse:
        return page(
            request, "error.html", status_code=403, title="Form refused",
            message=f"{exc}. Nothing was changed: go back, reload the page and try again.",
        )


_API_PREFIXES = ("/v1/", "/docs", "/openapi.json", "/healthz", "/metrics", "/static/")
_TITLES = {
    404: "Page not found", 405: "Not possible here", 409: "Not possible now", 413: "Too large",
    422: "Something in the request is wrong", 500: "Something went wrong",
}
_MESSAGES = {
    404: "There is no such page on the appliance. Check the address, or start again from the dashboard.",
    500: "Something went wrong on the appliance; it has been logged. Try again, and tell the "
         "administrator if it happens again.",
}


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(_API_PREFIXES) and "text/html" in request.headers.get("accept", "")


def _html_errors_for_pages(app: FastAPI) -> None:
    """A browser asking for a page gets an HTML error page; the API keeps its
    problem+json. The API's handler (installed by :func:`appliance.api.create_app`) still
    runs first, so errors are logged and mapped to a status the same way."""
    for exc_class in list(app.exception_handlers):
        if not isinstance(exc_class, type) or issubclass(exc_class, WebSocketRequestValidationError):
            continue
        api_handler = app.exception_handlers[exc_class]

        async def handler(request: Request, exc: Exception, api_handler=api_handler) -> Response:  # type: ignore[no-untyped-def]
            response: Response = await api_handler(request, exc)
            if not _is_page(request):
                return response
            status = response.status_code
            detail = None
            try:
                detail = json.loads(bytes(response.body)).get("detail")
            except (ValueError, AttributeError):
                pass
            message = _MESSAGES.get(status) or (detail if isinstance(detail, str) else None) or (
                "The appliance could not answer this request.")
            token = request.cookies.get(SESSION_COOKIE)
            if token and getattr(request.state, "session", None) is None:
                request.state.session = app.state.web.sessions.lookup(token)
            return page(request, "error.html", status_code=status,
                        title=_TITLES.get(status, "Something went wrong"), message=message)

        app.add_exception_handler(exc_class, handler)
