"""For admins: the REST API's keys — list, create (the secret shown once), revoke."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from appliance import audit
from appliance.api.deps import CheckedForm, ServicesDep, StaffAdmin
from appliance.api.keys import SCOPES, ApiKeyError
from appliance.api.services import Services
from appliance.web.render import page, redirect

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
log = logging.getLogger("appliance.web")


SCOPE_HINTS = {
    "send": "send messages and broadcasts",
    "read": "read message status, replies and modems",
    "admin": "everything, opt-outs and webhooks included",
}


def _keys_page(request: Request, services: Services, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("errors", {})
    context.setdefault("name", "")
    context.setdefault("chosen", [])
    context.setdefault("created", None)
    context.setdefault("secret", None)
    return page(request, "keys.html", status_code=status_code, title="API keys",
                keys=services.keys.list(), scopes=[(s, SCOPE_HINTS[s]) for s in SCOPES], **context)


@router.get("/keys", response_class=HTMLResponse)
def keys(request: Request, _session: StaffAdmin, services: ServicesDep) -> HTMLResponse:
    return _keys_page(request, services)


@router.post("/keys", response_class=HTMLResponse)
def create_key(request: Request, session: StaffAdmin, services: ServicesDep,
               form: CheckedForm) -> HTMLResponse:
    """Create a key and show its secret on this one answer (never stored, never logged)."""
    name = str(form.get("name", "")).strip()
    chosen = [str(s) for s in form.getlist("scopes")]
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the key a name, e.g. the system that will use it."
    elif len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    if not chosen:
        errors["scopes"] = "Choose at least one scope."
    elif unknown := sorted(set(chosen) - set(SCOPES)):
        errors["scopes"] = f"Unknown scope {unknown[0]!r}; choose send, read or admin."
    if not errors:
        try:
            audit.note(audit.Actor.user(session.user.username), audit.Action.KEY_CREATE, name,
                       {"scopes": sorted(set(chosen))})
            key, secret = services.keys.create(name, chosen)
        except ApiKeyError as exc:
            errors["name"] = str(exc)
        else:
            log.info("web: %s created API key %s %r (scopes %s)", session.user.username, key.id,
                     key.name, ", ".join(sorted(key.scopes)))
            return _keys_page(request, services, created=key, secret=secret)
    return _keys_page(request, services, status_code=422, errors=errors, name=name, chosen=chosen)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, key_id: str, session: StaffAdmin, services: ServicesDep,
               _form: CheckedForm) -> Response:
    try:
        audit.note(audit.Actor.user(session.user.username), audit.Action.KEY_REVOKE, key_id)
        key = services.keys.revoke(key_id)
    except ApiKeyError:
        return page(request, "error.html", status_code=404, title="No such key",
                    message=f"There is no live API key with id {key_id!r}; it may be revoked already.")
    log.info("web: %s revoked API key %s %r", session.user.username, key.id, key.name)
    return redirect("/keys", flash=f"Key {key.id} ({key.name}) revoked: requests with it are refused from now on.")
