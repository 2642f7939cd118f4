"""Sign in, sign out, change one's password."""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from appliance import audit
from appliance.api.deps import CheckedForm, SignedIn, Web
from appliance.web.auth import LOGIN_COOKIE, SESSION_COOKIE, same_origin
from appliance.web.render import page, redirect
from appliance.web.users import MIN_PASSWORD_LENGTH, UserError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
log = logging.getLogger("appliance.web")



def _safe_next(target: str) -> str:
    """Only a path on this appliance (never ``//other.host`` or ``https://...``)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, *, next_path: str, username: str = "", error: str | None = None,
                errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = page(request, "login.html", status_code=status_code, title="Sign in",
                    login_token=token, next=next_path, username=username, error=error,
                    errors=errors or {})
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, web: Web, next: str = "/") -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and web.sessions.lookup(token):
        return redirect(_safe_next(next))
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, web: Web) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/")))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    token = str(form.get("csrf_token", ""))
    if not same_origin(request) or not cookie or not hmac.compare_digest(cookie, token):
        return _login_page(request, next_path=next_path, username=username, status_code=403,
                           error="The sign-in form had expired. Please try again.")
    errors = {}
    if not username:
        errors["username"] = "Enter your user name."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return _login_page(request, next_path=next_path, username=username, errors=errors, status_code=422,
                           error="Some fields need your attention.")
    client = request.client.host if request.client else "?"
    keys = (f"user:{username.lower()}", f"addr:{client}")
    wait = web.throttle.wait_s(*keys)
    if wait > 0:
        return _login_page(request, next_path=next_path, username=username, status_code=429,
                           error=f"Too many failed sign-ins. Try again in {int(wait // 60) + 1} min.")
    # scrypt is slow on purpose (~50 ms): off the event loop, or every request waits for it.
    user = await run_in_threadpool(web.users.authenticate, username, password)
    if user is None:
        web.throttle.failed(*keys)
        log.warning("web: failed sign-in for user %r from %s", username, client)
        return _login_page(request, next_path=next_path, username=username, status_code=401,
                           error="That user name and password do not match an active account.")
    # Only the name's count: one right password from an address must not wipe out the
    # wrong guesses it made at other names.
    web.throttle.succeeded(keys[0])
    session_token, _ = web.sessions.create(user)
    log.info("web: %s signed in from %s", user.username, client)
    response = redirect(next_path)
    response.set_cookie(SESSION_COOKIE, session_token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, web: Web, _form: CheckedForm) -> Response:
    web.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, _session: SignedIn) -> Response:
    return page(request, "account.html", title="Your account", errors={}, min_length=MIN_PASSWORD_LENGTH)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, web: Web, session: SignedIn,
                    form: CheckedForm) -> Response:
    current, new, confirm = (str(form.get(k, "")) for k in ("current", "password", "confirm"))
    errors: dict[str, str] = {}
    if web.users.authenticate(session.user.username, current) is None:
        errors["current"] = "This is not your current password."
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif new != confirm:
        errors["confirm"] = "The two new passwords are not the same."
    if errors:
        return page(request, "account.html", status_code=422, title="Your account", errors=errors,
                    min_length=MIN_PASSWORD_LENGTH)
    try:
        audit.note(audit.Actor.user(session.user.username), audit.Action.USER_PASSWORD, session.user.username)
        web.users.set_password(session.user.username, new)
    except UserError as exc:
        return page(request, "account.html", status_code=422, title="Your account",
                    errors={"password": str(exc)}, min_length=MIN_PASSWORD_LENGTH)
    # Changing the password signs out every session, this one too: sign in again.
    response = redirect("/login", flash="Password changed. Sign in with the new one.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
