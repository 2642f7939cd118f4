"""``/v1/opt-outs``: the suppression list (numbers that must not be sent to)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from appliance import audit
from appliance.api.deps import AdminKey, ReadKey, ServicesDep
from appliance.api.problems import ApiProblem, problem_responses
from appliance.api.routes.messages import normalise
from appliance.api.schemas import OptOutEntry, OptOutPage, OptOutRequest
from appliance.api.store import StoreStats

__all__ = ["router"]

router = APIRouter(prefix="/v1/opt-outs", tags=["opt-outs"])


@router.get(
    "",
    response_model=OptOutPage,
    summary="The suppression list, by number",
    responses=problem_responses(401, 403, 422),
)
def list_opt_outs(
    _key: ReadKey,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> OptOutPage:
    page = services.queue.list_opt_outs(limit=limit, cursor=cursor)
    return OptOutPage(items=[OptOutEntry.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    response_model=OptOutEntry,
    status_code=201,
    summary="Opt a number out",
    responses={
        200: {"model": OptOutEntry, "description": "The number was already opted out."},
        **problem_responses(401, 403, 422),
    },
)
def add_opt_out(
    request: OptOutRequest,
    response: Response,
    key: AdminKey,
    services: ServicesDep,
) -> OptOutEntry:
    """201 when added, 200 when it was already on the list. Messages still queued to it
    become `suppressed`. The change is logged with the source `api:<key name>`."""
    number = normalise(request.number, services, "number")
    added = services.queue.opt_out(number, source=f"api:{key.name}", note=request.note, within=audit.if_changed(
        audit.Actor.key(key.name), audit.Action.OPTOUT_ADD, audit.masked(number)))
    if not added:
        response.status_code = 200
    entry = StoreStats(services.queue.engine).opt_out(number)
    if entry is None:  # opted back in between the two statements
        raise ApiProblem(409, "invalid-state", f"{number} was opted back in while this request ran; try again")
    return OptOutEntry.of(entry)


@router.delete(
    "/{number}",
    status_code=204,
    response_class=Response,
    summary="Opt a number back in",
    responses=problem_responses(401, 403, 404, 422),
)
def remove_opt_out(
    number: Annotated[str, Path(max_length=64, description="The number (URL-encode the `+` as `%2B`).")],
    key: AdminKey,
    services: ServicesDep,
) -> Response:
    e164 = normalise(number, services, "number")
    if not services.queue.opt_in(e164, source=f"api:{key.name}", within=audit.if_changed(
            audit.Actor.key(key.name), audit.Action.OPTOUT_REMOVE, audit.masked(e164))):
        raise ApiProblem(404, "not-found", f"{e164} is not on the opt-out list")
    return Response(status_code=204)
