"""``/v1/messages``: send, look up, list, cancel, resend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from appliance import audit
from appliance.api.deps import ReadKey, SendKey, ServicesDep
from appliance.api.params import record_id
from appliance.api.problems import ApiProblem, FieldError, problem_responses
from appliance.api.schemas import (
    MessageDetail,
    MessagePage,
    MessageSummary,
    Queued,
    RecipientError,
    SendRequest,
    SendResult,
)
from appliance.api.services import Services
from appliance.api.store import StoreStats
from appliance.numbers import InvalidNumber, to_e164

__all__ = ["router"]

router = APIRouter(prefix="/v1/messages", tags=["messages"])

MessageId = record_id("message")


def normalise(raw: str, services: Services, field: str) -> str:
    """``raw`` in E.164, or a 422 naming ``field``."""
    try:
        return to_e164(raw, services.settings.appliance.default_region)
    except InvalidNumber as exc:
        raise ApiProblem.invalid([FieldError(field=field, detail=str(exc))]) from None


@router.post(
    "",
    status_code=202,
    response_model=SendResult,
    summary="Queue a message to one or more recipients",
    responses=problem_responses(401, 403, 409, 413, 422),
)
def send_messages(
    request: SendRequest,
    key: SendKey,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=255,
        description="Repeat a request safely: the same key with the same request returns the "
                    "first answer; with a different request, 409.",
    )] = None,
) -> SendResult:
    """One message per recipient (a number listed twice gets two). Each recipient's outcome
    is reported on its own: a number that cannot be read goes into `errors` and the others
    are still queued; a number on the opt-out list gets a message with status `suppressed`
    that is never sent. Only when *no* recipient is usable is the request refused (422).

    Requests count as the same for `Idempotency-Key` when they queue the same thing: the
    same recipients after normalisation to E.164, text and options.
    """
    region = services.settings.appliance.default_region
    numbers: list[str] = []
    errors: list[RecipientError] = []
    bad: list[FieldError] = []
    single = len(request.to) == 1
    for i, raw in enumerate(request.to):
        try:
            number = to_e164(raw, region)
        except InvalidNumber as exc:
            errors.append(RecipientError(to=raw, detail=str(exc)))
            bad.append(FieldError(field="to" if single else f"to.{i}", detail=str(exc)))
            continue
        numbers.append(number)
    if not numbers:
        raise ApiProblem.invalid(bad)

    stats = StoreStats(services.queue.engine)
    replay = idempotency_key is not None and stats.batch_exists(idempotency_key)
    views = services.queue.enqueue(
        numbers,
        request.body,
        priority=request.priority,
        send_at=request.send_at,
        validity_s=request.validity_s,
        idempotency_key=idempotency_key,
        metadata=request.metadata,
        within=audit.on_send(audit.Actor.key(key.name), numbers),
    )
    if replay:
        # The store answers with today's statuses; the first answer said queued or suppressed.
        suppressed = stats.suppressed_at_enqueue([v.id for v in views])
        statuses = ["suppressed" if v.id in suppressed else "queued" for v in views]
    else:
        statuses = [v.status for v in views]
    return SendResult(
        messages=[
            Queued(id=v.id, to=v.to, status=status, parts=v.parts, encoding=v.encoding)
            for v, status in zip(views, statuses, strict=True)
        ],
        errors=errors,
    )


@router.get(
    "",
    response_model=MessagePage,
    summary="List messages, newest first",
    responses=problem_responses(401, 403, 422),
)
def list_messages(
    _key: ReadKey,
    services: ServicesDep,
    status: Annotated[str | None, Query(description="Only messages in this state.")] = None,
    to: Annotated[str | None, Query(description="Only messages to this number (any format).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> MessagePage:
    number = normalise(to, services, "to") if to is not None else None
    page = services.queue.list(status=status, to=number, limit=limit, cursor=cursor)
    return MessagePage(items=[MessageSummary.of(m) for m in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{message_id:int}",
    response_model=MessageDetail,
    summary="One message with its parts",
    responses=problem_responses(401, 403, 404, 422),
)
def get_message(
    message_id: MessageId,
    _key: ReadKey,
    services: ServicesDep,
) -> MessageDetail:
    return MessageDetail.of(services.queue.get(message_id))


@router.delete(
    "/{message_id:int}",
    response_model=MessageDetail,
    summary="Cancel a queued message",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def cancel_message(
    message_id: MessageId,
    key: SendKey,
    services: ServicesDep,
) -> MessageDetail:
    """Only while it is `queued`; once a part is on its way (or it is done), 409."""
    audit.note(audit.Actor.key(key.name), audit.Action.MESSAGE_CANCEL, message_id)
    return MessageDetail.of(services.queue.cancel(message_id, by=f"api:{key.name}"))


@router.post(
    "/{message_id:int}/resend",
    status_code=202,
    response_model=MessageDetail,
    summary="Queue an unknown or failed message again",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def resend_message(
    message_id: MessageId,
    key: SendKey,
    services: ServicesDep,
) -> MessageDetail:
    """For a message whose outcome is `unknown` (the modem never answered, so it may have
    arrived) or `failed`. The previous attempt is kept in the audit trail."""
    audit.note(audit.Actor.key(key.name), audit.Action.MESSAGE_RESEND, message_id)
    return MessageDetail.of(services.queue.resend(message_id, by=f"api:{key.name}"))
