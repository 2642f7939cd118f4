"""Who is signed in, what they may do, and CSRF checks for the web pages.

A page depends on :func:`signed_in` (or :func:`admin_only`); a form handler on
:func:`checked_form`, which also compares the form's ``csrf_token`` with the session's and
refuses a cross-site ``Origin``. Failures raise the exceptions below, which
:mod:`appliance.web.site` turns into a redirect to the sign-in page or a 403 page.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from appliance.errors import ApplianceError
from appliance.web.users import Session, Sessions, Users

if TYPE_CHECKING:
    from starlette.datastructures import FormData

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "CsrfRejected",
    "LoginThrottle",
    "PageForbidden",
    "SignInRequired",
    "WebState",
    "admin_only",
    "check_csrf",
    "checked_form",
    "signed_in",
    "web_state",
]

SESSION_COOKIE = "appliance_session"
LOGIN_COOKIE = "appliance_login"


class SignInRequired(ApplianceError):
    """No live session: send the browser to the sign-in page, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class PageForbidden(ApplianceError):
    """Signed in, but the role does not allow this page or action."""


class CsrfRejected(ApplianceError):
    """A form without the session's CSRF token, or posted from another site."""


class LoginThrottle:
    """Slows down password guessing: after ``limit`` failures for one user name (or from
    one address) within ``window_s``, sign-in is refused until the window has passed."""

    def __init__(self, *, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def wait_s(self, *keys: str) -> float:
        """Seconds until sign-in is allowed again for these keys (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                self.window_s - (now - times[-self.limit])
                for key in keys if len(times := self._recent(key, now)) >= self.limit
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


@dataclass
class WebState:
    """What the pages keep on ``app.state.web``."""

    users: Users
    sessions: Sessions
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def signed_in(request: Request, web: Annotated[WebState, Depends(web_state)]) -> Session:
    """The request's live session; otherwise :class:`SignInRequired`."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = web.sessions.lookup(token) if token else None
    if session is None:
        raise SignInRequired(_here(request) if request.method == "GET" else "/")
    request.state.session = session
    return session


def admin_only(session: Annotated[Session, Depends(signed_in)]) -> Session:
    if not session.user.is_admin:
        raise PageForbidden("this page is for administrators; ask an admin to do this")
    return session


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site (``Origin`` or,
    without it, ``Referer`` naming another host)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source != "null"
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", "")


def check_csrf(request: Request, session: Session, token: object) -> None:
    """:class:`CsrfRejected` unless the request is same-origin and ``token`` is the
    session's CSRF token."""
    if not same_origin(request):
        raise CsrfRejected("this form was posted from another site")
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise CsrfRejected("this form is missing its security token or it has expired")


async def checked_form(request: Request, session: Annotated[Session, Depends(signed_in)]) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    if not same_origin(request):  # before reading a cross-site upload
        raise CsrfRejected("this form was posted from another site")
    form = await request.form()
    check_csrf(request, session, form.get("csrf_token"))
    return form
