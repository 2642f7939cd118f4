"""Mounting the web pages on the API's FastAPI app: :func:`mount_web`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from appliance.web.auth import CsrfRejected, PageForbidden, SignInRequired, WebState
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
