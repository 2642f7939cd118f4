"""Compose: write a text to numbers and groups, count its parts live, preview, send now or
later. Every send from this page is a broadcast (personalised with ``{field}``), so its
progress can be followed on the broadcasts page."""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from appliance.api.deps import CheckedForm, ServicesDep, SignedIn, broadcast_service, checked_preview, contact_book
from appliance.api.services import Services
from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec
from appliance.numbers import read_numbers, split_numbers
from appliance.pdu import PduError, plan
from appliance.queue import InvalidRequest, NotFound
from appliance.text import is_blank
from appliance.web.auth import check_csrf
from appliance.web.forms import field_errors
from appliance.web.render import page, redirect
from appliance.web.pages.approval import start_options

__all__ = ["ComposeForm", "router"]

router = APIRouter(include_in_schema=False)
log = logging.getLogger("appliance.web")

Services_ = ServicesDep

# The store's error prefixes → the compose form's fields.
_STORE_FIELDS = {"template": "text", "audience": "numbers", "kind": "kind", "send_at": "send_at"}
MAX_NUMBERS = 10_000
MAX_UNREADABLE_SHOWN = 100


@dataclass
class ComposeForm:
    """The compose form's fields as typed, and the errors found in them."""

    numbers: str = ""
    groups: list[str] = field(default_factory=list)
    text: str = ""
    kind: str = "transactional"
    when: str = "now"
    send_at: str = ""
    name: str = ""
    allow_missing: bool = False
    form_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, form: FormData) -> ComposeForm:
        return cls(
            numbers=str(form.get("numbers", "")),
            groups=[str(g) for g in form.getlist("groups")],
            text=str(form.get("text", "")),
            kind=str(form.get("kind", "transactional")),
            when=str(form.get("when", "now")),
            send_at=str(form.get("send_at", "")),
            name=str(form.get("name", "")).strip(),
            allow_missing=form.get("allow_missing") == "yes",
            form_id=str(form.get("form_id", "")),
        )

    def number_list(self) -> list[str]:
        """The numbers typed, as typed (:func:`appliance.numbers.split_numbers`: new lines,
        commas, semicolons and tabs separate; spaces and brackets belong to a number)."""
        return split_numbers(self.numbers)

    def spec(self, zone: ZoneInfo, now: float) -> BroadcastSpec | None:
        """The broadcast this form asks for, or None with ``errors`` filled in."""
        numbers = self.number_list()
        if not numbers and not self.groups:
            self.errors["numbers"] = "Give at least one number, or choose a group below."
        elif len(numbers) > MAX_NUMBERS:
            self.errors["numbers"] = f"At most {MAX_NUMBERS:,} numbers here; import a CSV of contacts for more."
        if is_blank(self.text):
            self.errors["text"] = "Write the message." if not self.text.strip() else (
                "The message shows nothing: it is only spaces or invisible characters. Write the message.")
        if self.kind not in ("transactional", "marketing"):
            self.errors["kind"] = "Choose the kind of message."
        send_at: float | None = None
        if self.when == "later":
            try:
                local = datetime.strptime(self.send_at, "%Y-%m-%dT%H:%M").replace(tzinfo=zone)
            except ValueError:
                self.errors["send_at"] = "Give the date and time to send at."
            else:
                send_at = local.timestamp()
                if send_at <= now:
                    self.errors["send_at"] = "This time has passed; choose a time ahead, or send now."
        if self.errors:
            return None
        return BroadcastSpec(
            template=self.text, audience=Audience(tuple(self.groups), tuple(numbers)),
            kind=self.kind, name=self.name or self.default_name(numbers), send_at=send_at, priority="normal",
            allow_missing=self.allow_missing,
        )

    def default_name(self, numbers: list[str]) -> str:
        """"To Class 5B and 3 numbers", "To +14155550101": what the broadcasts list shows
        when no name was given."""
        parts = list(self.groups)
        if len(numbers) == 1:
            parts.append(numbers[0])
        elif numbers:
            parts.append(f"{len(numbers):,} numbers")
        label = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return f"To {label}"[:120]

    def take_error(self, exc: InvalidRequest | NotFound) -> None:
        """Put a store error ("template: ...", "audience: ...") next to its field."""
        if isinstance(exc, NotFound):  # a group deleted since the form was shown
            self.errors["groups"] = str(exc)
            return
        for name, message in field_errors(exc, "text", rename=_STORE_FIELDS).items():
            self.errors[name if name in _STORE_FIELDS.values() else "text"] = message


class _SentForms:
    """Which compose forms were already sent (form id → broadcast id), so a double click or
    a reload of the confirmation does not send twice. Bounded; lost on restart, which is
    fine for a guard against clicks seconds apart."""

    def __init__(self, size: int = 1000) -> None:
        self._sent: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def claim(self, form_id: str) -> tuple[bool, int | None]:
        """(True, None) if this form may be sent now; (False, id) if it was (or is being) sent."""
        with self._lock:
            if form_id in self._sent:
                return False, self._sent[form_id] or None
            self._sent[form_id] = 0
            while len(self._sent) > self._size:
                self._sent.popitem(last=False)
            return True, None

    def done(self, form_id: str, broadcast_id: int | None) -> None:
        with self._lock:
            if broadcast_id is None:
                self._sent.pop(form_id, None)
            else:
                self._sent[form_id] = broadcast_id


_sent_forms = _SentForms()


def _zone(services: Services) -> ZoneInfo:
    return ZoneInfo(services.settings.broadcasts.timezone)


def _compose_page(request: Request, services: Services, form: ComposeForm, *, status_code: int = 200) -> Response:
    settings = services.settings.broadcasts
    quiet = f"{settings.quiet_hours_start}–{settings.quiet_hours_end}" if settings.quiet_hours_start else None
    groups = contact_book(services).list_groups()
    return page(request, "compose.html", status_code=status_code, title="Compose", form=form,
                errors=form.errors, groups=groups, quiet=quiet, footer=settings.opt_out_footer.strip(),
                timezone=settings.timezone)


@router.get("/compose", response_class=HTMLResponse)
def compose(request: Request, _session: SignedIn, services: Services_, to: str = "", group: str = "") -> Response:
    return _compose_page(request, services, ComposeForm(numbers=to, groups=[group] if group else []))


@router.post("/compose", response_class=HTMLResponse)
def edit(request: Request, _session: SignedIn, services: Services_, form: CheckedForm) -> Response:
    """Back from the preview to the form, with what was typed."""
    return _compose_page(request, services, ComposeForm.of(form))


def _read(form: FormData, services: Services) -> tuple[ComposeForm, BroadcastService, BroadcastSpec | None]:
    """The typed form, the broadcast service and the spec (None: ``typed.errors`` says why)."""
    typed = ComposeForm.of(form)
    service = broadcast_service(services)
    return typed, service, typed.spec(_zone(services), service.clock())


@router.post("/compose/preview", response_class=HTMLResponse)
def preview(request: Request, _session: SignedIn, services: Services_, form: CheckedForm) -> Response:
    typed, service, spec = _read(form, services)
    if spec is None:
        return _compose_page(request, services, typed, status_code=422)
    try:
        result = checked_preview(services, service, spec, samples=3)
    except (InvalidRequest, NotFound) as exc:
        typed.take_error(exc)
        return _compose_page(request, services, typed, status_code=422)
    if result.sendable == 0:
        typed.errors["numbers"] = (
            "No one to send to: every number is invalid or has opted out."
            if result.recipients or result.invalid else "The chosen groups have no members."
        )
        return _compose_page(request, services, typed, status_code=422)
    typed.form_id = secrets.token_urlsafe(16)
    unreadable = read_numbers(typed.numbers, services.settings.appliance.default_region).unreadable
    return page(request, "compose_preview.html", title="Check and send", form=typed, preview=result,
                errors={}, timezone=services.settings.broadcasts.timezone,
                unreadable=unreadable[:MAX_UNREADABLE_SHOWN], unreadable_more=max(0, len(unreadable) - MAX_UNREADABLE_SHOWN))


@router.post("/compose/send", response_class=HTMLResponse)
def send(request: Request, session: SignedIn, services: Services_, form: CheckedForm) -> Response:
    typed, service, spec = _read(form, services)
    if spec is None:
        return _compose_page(request, services, typed, status_code=422)
    if typed.form_id:
        first, existing = _sent_forms.claim(typed.form_id)
        if not first:
            if existing:
                return redirect(f"/broadcasts/{existing}", flash="This message was already sent; here it is.")
            return redirect("/broadcasts", flash="This message is already being sent.")
    broadcast_id: int | None = None
    try:
        checked_preview(services, service, spec)
        view = service.create_and_start(spec, created_by=f"web:{session.user.username}",
                                        **start_options(services, session))
        broadcast_id = view.id
    except (InvalidRequest, NotFound) as exc:
        typed.take_error(exc)
        return _compose_page(request, services, typed, status_code=422)
    finally:
        if typed.form_id:
            _sent_forms.done(typed.form_id, broadcast_id)
    log.info("web: %s started broadcast %d to %d recipient(s)", session.user.username, view.id, view.recipients)
    if view.status == "awaiting_approval":
        message = (f"{view.recipients:,} recipients: this broadcast waits for an admin's approval before "
                   "anything is sent.")
    elif view.status == "scheduled" and view.send_at is not None:
        local = view.send_at.astimezone(_zone(services))
        message = f"Scheduled: {view.recipients:,} message(s) will go from {local:%-d %b %H:%M}."
    else:
        message = f"Sending {view.recipients:,} message(s)."
    return redirect(f"/broadcasts/{view.id}", flash=message)


@router.post("/compose/count")
async def count(request: Request, session: SignedIn, services: Services_) -> JSONResponse:
    """How the text would be sent: for the live counter under the message box. Posted (a
    long text does not fit in a URL) with the session's CSRF token in ``X-CSRF-Token``.
    National shift tables of ``[sms] national_languages`` count when they save parts."""
    check_csrf(request, session, request.headers.get("x-csrf-token"))
    form = await request.form()
    text, kind = str(form.get("text", "")), str(form.get("kind", "transactional"))
    footer = services.settings.broadcasts.opt_out_footer.strip() if kind == "marketing" else ""
    body = f"{text}\n{footer}" if footer and text else text
    data: dict[str, Any] = {"chars": len(text), "parts": 0, "encoding": "gsm7", "chars_left": 0}
    if not body:
        data["summary"] = "0 characters · 0 parts"
        return JSONResponse(data)
    try:
        p = plan(body, national_languages=services.settings.sms.national_languages)
    except PduError as exc:
        data["summary"] = f"Too long: {exc}"
        data["error"] = str(exc)
        return JSONResponse(data)
    data.update(parts=p.total, encoding=p.encoding, chars_left=p.chars_left,
                locking_shift=p.locking_shift, single_shift=p.single_shift,
                default_parts=p.default_parts)
    limit = services.settings.appliance.max_parts
    if p.total > limit:
        data["error"] = f"{p.total} parts; a message may have at most {limit}"
        data["summary"] = f"Too long: {len(text)} characters make {p.total} parts; the limit is {limit}. Shorten it."
        return JSONResponse(data)
    encoding = p.encoding_label  # "GSM-7", "GSM-7, Hindi tables"
    if p.encoding == "ucs2":
        encoding = "UCS-2 (emoji or non-GSM characters: fewer per part)"
    parts = f"{p.total} part" + ("s" if p.total != 1 else "")
    if p.default_parts != p.total:
        parts += f" instead of {p.default_parts}"
    summary = f"{len(text)} characters · {encoding}: {parts}, {p.chars_left} left in the last part"
    if footer:
        summary += " (with the opt-out footer)"
    if "{" in text:
        summary += " · personal fields counted as written; the preview counts each person's text"
    data["summary"] = summary
    return JSONResponse(data)
