"""The Twilio-compatible Messages API under ``/2010-04-01/Accounts/{AccountSid}/``.

Existing Twilio code (any official SDK) sends through the appliance by changing its base
URL: same queue and rules as ``/v1`` (opt-outs, caps, quiet hours, idempotency). Requests
are HTTP Basic, ``AccountSid:AuthToken`` or ``SK…:secret`` (``appliance keys create NAME
--twilio``); errors are Twilio's JSON (``code``, ``message``, ``more_info``, ``status``).
README, "Twilio-compatible API", has the compatibility table.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from appliance import audit
from appliance.api.deps import ServicesDep
from appliance.api.problems import ApiProblem
from appliance.api.services import Services
from appliance.db import consent as consent_db
from appliance.db import twilio as twilio_db
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.twilio import Credential, TwilioMessageRow
from appliance.numbers import InvalidNumber, to_e164
from appliance.queue.errors import (
    DatabaseUnavailable,
    DuplicateIdempotencyKey,
    InvalidRequest,
    InvalidState,
    NotFound,
    QueueError,
)
from appliance.twilio.credentials import TwilioCredentials
from appliance.twilio.model import API_VERSION, error_body, message_resource
from appliance.twilio.senders import modem_numbers, resolve_sender

__all__ = ["MAX_BODY_CHARS", "WARNING_HEADER", "TwilioError", "router"]

T = TypeVar("T")

router = APIRouter(prefix=f"/{API_VERSION}/Accounts/{{account_sid}}", tags=["twilio"])

MAX_BODY_CHARS = 1600
MAX_PAGE_SIZE = 1000
WARNING_HEADER = "X-Appliance-Twilio-Warning"
_IGNORED = ("MessagingServiceSid", "ShortenUrls", "ProvideFeedback", "Attempt", "SmartEncoded",
            "PersistentAction", "ForceDelivery", "ApplicationSid", "MaxPrice", "AddressRetention",
            "ContentRetention", "RiskCheck", "SendAsMms")
_REFUSED = {"MediaUrl": (21620, "MediaUrl: MMS is not supported by the appliance (SMS only)"),
            "ContentSid": (21656, "ContentSid: content templates are not supported; send Body"),
            "ContentVariables": (21656, "ContentVariables: content templates are not supported; send Body")}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]{1,64}")
_KNOWN = {"To", "From", "Body", "StatusCallback", "ValidityPeriod", "SendAt", "ScheduleType"}


class TwilioError(ApiProblem):
    """An error answered as Twilio does: HTTP ``status`` and Twilio's ``code``."""

    def __init__(self, status: int, code: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, f"twilio-{code}", message, headers=headers)
        self.code = code

    def response(self) -> JSONResponse:  # type: ignore[override]
        return JSONResponse(error_body(self.status, self.code, self.detail), status_code=self.status,
                            headers=self.headers)


async def _threaded(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` off the event loop, the queue's errors answered in Twilio's JSON."""
    try:
        return await run_in_threadpool(fn, *args)
    except DatabaseUnavailable:
        raise TwilioError(503, 20503, "Service unavailable: the database is not answering; nothing was "
                                      "changed, try again shortly", headers={"Retry-After": "5"}) from None
    except DuplicateIdempotencyKey:
        raise TwilioError(409, 20001, "I-Twilio-Idempotency-Token was already used for a different "
                                      "request; use a new token for a new request") from None
    except QueueError as exc:
        raise TwilioError(400, 20001, str(exc)[:300]) from None


def _auth_error(message: str) -> TwilioError:
    return TwilioError(401, 20003, message, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})


def _credential(request: Request, account_sid: str, services: Services) -> Credential:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise _auth_error("Authenticate: send HTTP Basic AccountSid:AuthToken (or an SK API key SID:secret)")
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _auth_error("Authenticate: the Basic credentials cannot be read") from None
    if not sep:
        raise _auth_error("Authenticate: the Basic credentials need user:password")
    cred = TwilioCredentials(services.queue.engine).authenticate(username, password)
    if cred is None:
        raise _auth_error("Authenticate: unknown or revoked credentials (make some with "
                          "'appliance keys create NAME --twilio')")
    if cred.account_sid != account_sid:
        raise _auth_error(f"Authenticate: these credentials are not for account {account_sid[:34]!r}")
    return cred


def _needs(cred: Credential, scope: str) -> None:
    if "admin" not in cred.scopes and scope not in cred.scopes:
        raise TwilioError(403, 20403, f"Forbidden: key {cred.key_name!r} lacks the {scope!r} scope")


async def _form(request: Request) -> dict[str, list[str]]:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and ctype not in ("application/x-www-form-urlencoded", ""):
        raise TwilioError(400, 20001, "the request body must be application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise TwilioError(400, 20001, "the form body is not valid UTF-8 form encoding") from None
    form: dict[str, list[str]] = {}
    for k, v in pairs:
        form.setdefault(k, []).append(v)
    return form


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return None if not values else values[-1]


def _numbers(services: Services) -> dict[str, str]:
    return modem_numbers(services.settings, list(getattr(services, "modems", []) or []))


def _resource(row: TwilioMessageRow, numbers: Mapping[str, str]) -> dict[str, Any]:
    sender = None if row.modem is None else numbers.get(row.modem, row.modem)
    return message_resource(row, sender=sender, now=time.time())


def _parse_send_at(raw: str) -> datetime:
    text = raw.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise TwilioError(400, 35115, f"SendAt: {raw[:40]!r} is not an ISO 8601 time "
                                      "(e.g. 2030-01-01T09:00:00Z)") from None
    if when.tzinfo is None:
        raise TwilioError(400, 35115, "SendAt: give a timezone, e.g. 2030-01-01T09:00:00Z")
    return when


def _status_callback(raw: str) -> str:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise TwilioError(400, 21609, f"StatusCallback: {raw[:60]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc or len(raw) > 2000:
        raise TwilioError(400, 21609, f"StatusCallback: {raw[:60]!r} is not an http(s) URL")
    return raw


@router.post("/Messages.json", status_code=201, summary="Send a message (Twilio's Messages API)")
async def create_message(
    account_sid: str, request: Request, services: ServicesDep,
) -> JSONResponse:
    cred = await _threaded(_credential, request, account_sid, services)
    _needs(cred, "send")
    form = await _form(request)
    warnings = [name for name in _IGNORED if name in form]
    unknown = sorted(k for k in form if k not in _KNOWN and k not in _IGNORED and k not in _REFUSED)
    # Field names go into a header: only plain ones are named (no control or non-ASCII characters).
    warnings += [k for k in unknown if _PLAIN_NAME.fullmatch(k)][:20]
    odd = len(unknown) - len([k for k in unknown if _PLAIN_NAME.fullmatch(k)][:20])
    if odd:
        warnings.append(f"{odd} other field(s)")
    for name, (code, message) in _REFUSED.items():
        if form.get(name):
            raise TwilioError(400, code, message)
    settings = services.settings
    raw_to = _one(form, "To")
    if not raw_to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    try:
        to = to_e164(raw_to, settings.appliance.default_region)
    except InvalidNumber as exc:
        raise TwilioError(400, 21211, f"The 'To' number {raw_to[:40]} is not a valid phone number: {exc}") from None
    body = _one(form, "Body")
    if body is None or body == "":
        raise TwilioError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        raise TwilioError(400, 21617, f"The concatenated message body exceeds the {MAX_BODY_CHARS} character limit.")
    modem: str | None = None
    raw_from = _one(form, "From")
    if raw_from:
        modem = resolve_sender(raw_from, settings, list(getattr(services, "modems", []) or []))
        if modem is None:
            raise TwilioError(400, 21606, f"The 'From' phone number {raw_from[:40]} is not a valid, "
                                          "SMS-capable number of this appliance (a modem's number or name).")
    callback = _one(form, "StatusCallback")
    callback = _status_callback(callback) if callback else None
    validity: int | None = None
    raw_validity = _one(form, "ValidityPeriod")
    if raw_validity:
        if not raw_validity.strip().isdigit() or not 1 <= int(raw_validity) <= 36000:
            raise TwilioError(400, 90007, "ValidityPeriod: give whole seconds between 1 and 36000")
        validity = int(raw_validity)
    send_at: datetime | None = None
    raw_send_at = _one(form, "SendAt")
    schedule = _one(form, "ScheduleType")
    if raw_send_at:
        if schedule != "fixed":
            raise TwilioError(400, 35126, "ScheduleType: must be 'fixed' when SendAt is given")
        send_at = _parse_send_at(raw_send_at)
    elif schedule not in (None, "", "fixed"):
        raise TwilioError(400, 35126, "ScheduleType: the only value is 'fixed'")
    token = request.headers.get("i-twilio-idempotency-token")
    idempotency = f"twilio:{cred.account_sid}:{token[:200]}" if token else None

    def send() -> TwilioMessageRow:
        now = time.time()
        sids: dict[int, str] = {}

        def record(tx: Tx, ids: list[int]) -> None:
            # In the enqueue's transaction: an opted-out recipient rolls it all back, so
            # (as on Twilio) no message is made.
            if consent_db.opted_out_among(tx, [to]):
                raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
            for message_id in ids:
                sids[message_id] = "SM" + secrets.token_hex(16)
                twilio_db.insert_message(tx, message_id, sid=sids[message_id], account_sid=cred.account_sid,
                                         status_callback=callback, now=now)
            audit.on_send(audit.Actor.key(cred.key_name), [to], {"via": "twilio"})(tx, ids)

        try:
            views = services.queue.enqueue([to], body, send_at=send_at, validity_s=validity,
                                           idempotency_key=idempotency, modem=modem, within=record)
        except InvalidRequest as exc:
            if exc.field == "body" and "parts" in exc.detail:
                raise TwilioError(400, 21617, f"Body {exc.detail}") from None
            raise TwilioError(400, 20001, str(exc)[:300]) from None
        view = views[0]
        if view.id in sids:  # just made: no need to read it back
            return TwilioMessageRow(
                id=view.id, sid=sids[view.id], account_sid=cred.account_sid, status_callback=callback,
                recipient=view.to, body=view.body, status=view.status, parts=view.parts, modem=view.modem,
                created_at=view.created_at.timestamp(), updated_at=view.updated_at.timestamp(),
                send_at=None if view.send_at is None else view.send_at.timestamp(), sent_at=None, error=view.error,
                undelivered=False,
            )
        with read_tx(services.queue.engine) as tx:  # an idempotent replay
            row = _row_by_message(tx, cred.account_sid, view.id)
        if row is None:  # ... of a request made with other credentials
            raise TwilioError(409, 20001, "the I-Twilio-Idempotency-Token was used for another message")
        return row

    row = await _threaded(send)
    headers = {WARNING_HEADER: f"ignored: {', '.join(warnings)}"[:500]} if warnings else None
    return JSONResponse(_resource(row, _numbers(services)), status_code=201, headers=headers)


def _row_by_message(tx: Tx, account_sid: str, message_id: int) -> TwilioMessageRow | None:
    rows = twilio_db.list_messages(tx, account_sid, before_id=message_id + 1, limit=1)
    return rows[0] if rows and rows[0].id == message_id else None


def _message(services: Services, account_sid: str, sid: str) -> TwilioMessageRow:
    with read_tx(services.queue.engine) as tx:
        row = twilio_db.get_message(tx, account_sid, sid)
    if row is None:
        raise TwilioError(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{account_sid}/Messages/"
                                      f"{sid[:40]}.json was not found")
    return row


@router.get("/Messages/{sid}.json", summary="One message (Twilio's Messages API)")
async def fetch_message(
    account_sid: str, sid: str, request: Request, services: ServicesDep,
) -> JSONResponse:
    def run() -> dict[str, Any]:
        cred = _credential(request, account_sid, services)
        _needs(cred, "read")
        return _resource(_message(services, account_sid, sid), _numbers(services))

    return JSONResponse(await _threaded(run))


@router.post("/Messages/{sid}.json", summary="Cancel or redact a message (Twilio's Messages API)")
async def update_message(
    account_sid: str, sid: str, request: Request, services: ServicesDep,
) -> JSONResponse:
    cred = await _threaded(_credential, request, account_sid, services)
    _needs(cred, "send")
    form = await _form(request)
    status = _one(form, "Status")
    body = _one(form, "Body")
    if status is None and body is None:
        raise TwilioError(400, 20001, "give Status=canceled or Body= (empty, to redact)")
    if status is not None and status != "canceled":
        raise TwilioError(400, 20001, f"Status: {status[:20]!r} cannot be set; the only value is 'canceled'")
    if body not in (None, ""):
        raise TwilioError(400, 20001, "Body: a message's text can only be redacted (Body=)")

    def run() -> dict[str, Any]:
        row = _message(services, account_sid, sid)
        if status == "canceled":
            try:
                audit.note(audit.Actor.key(cred.key_name), audit.Action.MESSAGE_CANCEL, row.id)
                services.queue.cancel(row.id, by=f"twilio:{cred.key_name}")
            except InvalidState:
                raise TwilioError(400, 30409, "Message cannot be canceled: only queued or scheduled messages "
                                              "can be") from None
            except NotFound:
                raise TwilioError(404, 20404, "The requested resource was not found") from None
        if body == "":
            with write_tx(services.queue.engine) as tx:
                if not twilio_db.redact_body(tx, row.id, time.time()):
                    raise TwilioError(400, 20009, "Cannot redact a message that is queued or sending; "
                                                  "cancel it or wait until it is done")
        return _resource(_message(services, account_sid, sid), _numbers(services))

    return JSONResponse(await _threaded(run))


@router.delete("/Messages/{sid}.json", status_code=204, summary="Delete a message (Twilio's Messages API)")
async def delete_message(
    account_sid: str, sid: str, request: Request, services: ServicesDep,
) -> Response:
    def run() -> None:
        cred = _credential(request, account_sid, services)
        _needs(cred, "send")
        row = _message(services, account_sid, sid)
        with write_tx(services.queue.engine) as tx:
            if not twilio_db.delete_message(tx, row.id, time.time()):
                raise TwilioError(400, 20009, "Cannot delete this resource before it is complete")

    await _threaded(run)
    return Response(status_code=204)


def _date_bound(name: str, raw: str, *, end_of_day: bool) -> float:
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1) if end_of_day else start).timestamp()
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise TwilioError(400, 20001, f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _int_param(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise TwilioError(400, 20001, f"{name}: give a whole number from {low} to {high}")
    return int(raw)


@router.get("/Messages.json", summary="List messages, newest first (Twilio's Messages API)")
async def list_messages(
    account_sid: str, request: Request, services: ServicesDep,
) -> JSONResponse:
    q = request.query_params

    def run() -> dict[str, Any]:
        cred = _credential(request, account_sid, services)
        _needs(cred, "read")
        settings = services.settings
        size = _int_param("PageSize", q.get("PageSize"), 50, 1, MAX_PAGE_SIZE)
        page = _int_param("Page", q.get("Page"), 0, 0, 10_000)
        to = None
        if q.get("To"):
            try:
                to = to_e164(q["To"], settings.appliance.default_region)
            except InvalidNumber as exc:
                raise TwilioError(400, 21211, f"To: {exc}") from None
        modems = None
        if q.get("From"):
            modem = resolve_sender(q["From"], settings, list(getattr(services, "modems", []) or []))
            modems = [modem] if modem is not None else []
        sent_from = sent_before = None
        if q.get("DateSent"):  # that UTC day, whether given as a date or a time in it
            day = datetime.fromtimestamp(_date_bound("DateSent", q["DateSent"], end_of_day=False), UTC).date()
            sent_from = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            sent_before = sent_from + 86400
        if q.get("DateSent>"):
            sent_from = _date_bound("DateSent>", q["DateSent>"], end_of_day=False)
        if q.get("DateSent<"):
            sent_before = _date_bound("DateSent<", q["DateSent<"], end_of_day=True)
        token = q.get("PageToken") or ""
        before_id = after_id = None
        if token:
            if len(token) < 3 or token[:2] not in ("PA", "PB") or not token[2:].isdigit():
                raise TwilioError(400, 20001, "PageToken: use the next_page_uri or previous_page_uri given")
            if token[:2] == "PA":
                before_id = int(token[2:])
            else:
                after_id = int(token[2:])
        filters = dict(to=to, modems=modems, sent_from=sent_from, sent_before=sent_before)
        with read_tx(services.queue.engine) as tx:
            if token:
                rows = twilio_db.list_messages(tx, account_sid, before_id=before_id, after_id=after_id,
                                               limit=size + 1, **filters)  # type: ignore[arg-type]
                if after_id is not None:  # going back: the extra row is the newest
                    has_prev, rows = len(rows) > size, rows[-size:]
                    has_next = True
                else:
                    has_next, rows = len(rows) > size, rows[:size]
                    has_prev = page > 0
            else:
                rows = twilio_db.list_messages(tx, account_sid, limit=(page + 1) * size + 1,
                                               **filters)  # type: ignore[arg-type]
                has_next = len(rows) > (page + 1) * size
                rows = rows[page * size:(page + 1) * size]
                has_prev = page > 0
        numbers = _numbers(services)
        base = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        keep = [(k, v) for k, v in q.multi_items() if k not in ("Page", "PageSize", "PageToken")]

        def uri(page_no: int, page_token: str | None) -> str:
            params = [*keep, ("PageSize", str(size)), ("Page", str(page_no))]
            if page_token:
                params.append(("PageToken", page_token))
            return f"{base}?{urlencode(params)}"

        next_uri = uri(page + 1, f"PA{rows[-1].id}") if has_next and rows else None
        prev_uri = uri(page - 1, f"PB{rows[0].id}") if has_prev and rows and page > 0 else None
        start = page * size
        return {
            "messages": [_resource(r, numbers) for r in rows],
            "end": start + max(len(rows) - 1, 0),
            "first_page_uri": uri(0, None),
            "next_page_uri": next_uri,
            "page": page,
            "page_size": size,
            "previous_page_uri": prev_uri,
            "start": start,
            "uri": uri(page, token or None),
        }

    return JSONResponse(await _threaded(run))

