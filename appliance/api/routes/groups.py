"""``/v1/groups``: named audiences (static members plus an optional filter)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from appliance import audit
from appliance.api.deps import Book, ReadKey, SendKey
from appliance.api.problems import problem_responses
from appliance.api.schemas_broadcasts import (
    ContactOut,
    ContactPage,
    GroupIn,
    GroupList,
    GroupOut,
    GroupPatch,
    MembersRequest,
    MembersResult,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/groups", tags=["groups"])

GroupRef = Annotated[str, Path(max_length=200, description="The group's name or id.")]


@router.get("", response_model=GroupList, summary="List groups with their member counts",
            responses=problem_responses(401, 403))
def list_groups(_key: ReadKey, book: Book) -> GroupList:
    return GroupList(items=[GroupOut.of(g) for g in book.list_groups()])


@router.post("", status_code=201, response_model=GroupOut, summary="Make a group",
             responses=problem_responses(401, 403, 409, 422))
def create_group(body: GroupIn, key: SendKey, book: Book) -> GroupOut:
    """With a `filter` like `class = "5B"`, every matching contact is a member (now and
    later), besides the static members added with `POST /v1/groups/{group}/members`."""
    audit.note(audit.Actor.key(key.name), audit.Action.GROUP_CREATE, body.name)
    return GroupOut.of(book.create_group(body.name, description=body.description, filter=body.filter))


@router.get("/{group}", response_model=GroupOut, summary="One group",
            responses=problem_responses(401, 403, 404))
def get_group(group: GroupRef, _key: ReadKey, book: Book) -> GroupOut:
    return GroupOut.of(book.get_group(group))


@router.patch("/{group}", response_model=GroupOut, summary="Rename a group or change its filter",
              responses=problem_responses(401, 403, 404, 409, 422))
def update_group(group: GroupRef, body: GroupPatch, key: SendKey,
                 book: Book) -> GroupOut:
    audit.note(audit.Actor.key(key.name), audit.Action.GROUP_UPDATE, group,
               {"changed": sorted(body.model_dump(exclude_unset=True))})
    return GroupOut.of(book.update_group(group, name=body.name, description=body.description, filter=body.filter))


@router.delete("/{group}", status_code=204, response_class=Response, summary="Delete a group (not its contacts)",
               responses=problem_responses(401, 403, 404))
def delete_group(group: GroupRef, key: SendKey, book: Book) -> Response:
    audit.note(audit.Actor.key(key.name), audit.Action.GROUP_DELETE, group)
    book.delete_group(group)
    return Response(status_code=204)


@router.get("/{group}/members", response_model=ContactPage, summary="The group's members",
            responses=problem_responses(401, 403, 404, 422))
def list_members(
    group: GroupRef,
    _key: ReadKey,
    book: Book,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> ContactPage:
    page = book.list(group=group, limit=limit, cursor=cursor)
    return ContactPage(items=[ContactOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.post("/{group}/members", response_model=MembersResult, summary="Add static members",
             responses=problem_responses(401, 403, 404, 422))
def add_members(group: GroupRef, body: MembersRequest, key: SendKey,
                book: Book) -> MembersResult:
    audit.note(audit.Actor.key(key.name), audit.Action.GROUP_MEMBERS_ADD, group, {"numbers": len(body.numbers)})
    added, missing = book.add_members(group, body.numbers)
    return MembersResult(changed=added, not_contacts=missing)


@router.post("/{group}/members/remove", response_model=MembersResult, summary="Remove static members",
             responses=problem_responses(401, 403, 404, 422))
def remove_members(group: GroupRef, body: MembersRequest, key: SendKey,
                   book: Book) -> MembersResult:
    audit.note(audit.Actor.key(key.name), audit.Action.GROUP_MEMBERS_REMOVE, group, {"numbers": len(body.numbers)})
    return MembersResult(changed=book.remove_members(group, body.numbers))
