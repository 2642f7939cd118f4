"""Rendering pages: the Jinja2 environment (made on the first page, so a daemon nobody
browses never imports Jinja2), flash messages and redirects."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["TEMPLATES_DIR", "page", "redirect", "when"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
FLASH_COOKIE = "appliance_flash"

# Pages are never cached and never framed; scripts and styles only from the appliance.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.services.settings.broadcasts.timezone)


def when(value: datetime | float | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """A time in the appliance's timezone: ``14:05`` today, ``28 Nov 14:05`` this year,
    else with the year."""
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    local = moment.astimezone(zone)
    now = datetime.now(zone)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if local.date() == now.date():
        return local.strftime(clock)
    if local.year == now.year:
        return local.strftime(f"%-d %b {clock}")
    return local.strftime(f"%-d %b %Y {clock}")


@functools.cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["plural"] = lambda n, word, many=None: f"{n:,} {word if n == 1 else (many or word + 's')}"
    return env


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the signed-in session (if any), its CSRF token and the
    flash message left by the previous redirect."""
    session = getattr(request.state, "session", None)
    zone = _zone(request)
    flash = unquote(request.cookies.get(FLASH_COOKIE, "")) or None
    html = _environment().get_template(template).render(
        request=request,
        session=session,
        user=session.user if session else None,
        csrf_token=session.csrf if session else "",
        flash=flash,
        path=request.url.path,
        when=lambda v, seconds=False: when(v, zone, seconds=seconds),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, *, flash: str | None = None) -> RedirectResponse:
    """303 to ``url`` (a POST answered this way is not re-posted on reload), with an
    optional message shown once on the next page."""
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, path="/", httponly=True, samesite="lax")
    return response
