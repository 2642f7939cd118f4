"""``/v1/contacts``: the contact book, CSV import (upload or path) and export."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from appliance import audit
from appliance.api.deps import Book, ReadKey, SendKey, ServicesDep, contact_book
from appliance.api.params import record_id
from appliance.api.problems import ApiProblem, FieldError, problem_responses, validation_errors
from appliance.api.schemas_broadcasts import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    ImportPathRequest,
    ImportReportOut,
)
from appliance.contacts.csvio import read_import_file

__all__ = ["router"]

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

ContactId = record_id("contact")


@router.get("", response_model=ContactPage, summary="List contacts",
            responses=problem_responses(401, 403, 404, 422))
def list_contacts(
    _key: ReadKey,
    book: Book,
    group: Annotated[str | None, Query(description="Only members of this group (name or id).")] = None,
    search: Annotated[str | None, Query(max_length=100, description="Number or name contains this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> ContactPage:
    page = book.list(group=group, search=search, limit=limit, cursor=cursor)
    return ContactPage(items=[ContactOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=ContactOut, summary="Add a contact",
             responses=problem_responses(401, 403, 409, 422))
def create_contact(body: ContactIn, key: SendKey, book: Book) -> ContactOut:
    """409 when the number is already a contact."""
    audit.note(audit.Actor.key(key.name), audit.Action.CONTACT_CREATE, audit.masked(body.number))
    return ContactOut.of(book.create(body.number, first_name=body.first_name, last_name=body.last_name,
                                     name=body.name, fields=body.fields, groups=body.groups))


@router.get("/export", response_class=Response, summary="Export contacts as CSV",
            responses={200: {"content": {"text/csv": {}}}, **problem_responses(401, 403, 404)})
def export_contacts(
    _key: ReadKey,
    book: Book,
    group: Annotated[str | None, Query(description="Only members of this group.")] = None,
) -> Response:
    """Columns: number, first_name, last_name, the free fields, groups (`;`-separated).
    Importing the file back gives the same contacts."""
    return Response(book.export_csv(group=group), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="contacts.csv"'})


@router.post(
    "/import", response_model=ImportReportOut, summary="Import contacts from CSV",
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra={"requestBody": {"content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": ImportPathRequest.model_json_schema()},
    }}},
)
async def import_contacts(
    request: Request,
    key: SendKey,
    services: ServicesDep,
    map: Annotated[list[str], Query(description="`COLUMN=FIELD` (repeat); `COLUMN=` skips a column.")] = [],  # noqa: B006
    group: Annotated[str | None, Query(description="Add every imported contact to this group.")] = None,
    dry_run: Annotated[bool, Query(description="Report only; write nothing.")] = False,
) -> ImportReportOut:
    """Upload the file as the body (`Content-Type: text/csv`, UTF-8, up to 2 MB), or send
    JSON `{"path": ...}` naming a file in the appliance's import directory (`[contacts]
    import_dir`; admin scope; a regular file of up to 2 MB).

    Each row is reported on its own: `invalid` (number not valid: skipped), `duplicate`
    (number on an earlier row: skipped), `merged` (already a contact: its non-empty cells
    update it), or created. A file that cannot be read at all (not UTF-8, no number column)
    is refused with 422 and nothing is written; the import is one transaction.
    """
    import anyio

    book = contact_book(services)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "application/json":
        if not key.allows("admin"):
            raise ApiProblem(403, "forbidden", "importing a file by path needs the 'admin' scope; upload it instead")
        try:
            req = ImportPathRequest.model_validate(json.loads(raw or b"null"))
        except ValidationError as exc:
            raise ApiProblem.invalid(validation_errors(exc)) from None
        except ValueError as exc:
            raise ApiProblem.invalid([FieldError(field="request_body", detail=f"not valid JSON: {exc}")]) from None
        directory, limit = services.settings.import_dir(), request.app.state.max_request_bytes
        data = await anyio.to_thread.run_sync(lambda: read_import_file(directory, req.path, limit))
        mapping, group, dry_run = req.map, req.group or group, req.dry_run or dry_run
    else:
        data = raw
        mapping = {}
        for item in map:
            column, eq, field = item.partition("=")
            if not eq or not column.strip():
                raise ApiProblem.invalid([FieldError(field="map", detail=f"{item!r} is not COLUMN=FIELD")])
            mapping[column.strip()] = field.strip()
    audit.note(audit.Actor.key(key.name), audit.Action.CONTACT_IMPORT, group, {"bytes": len(data)})
    report = await anyio.to_thread.run_sync(
        lambda: book.import_csv(data, mapping=mapping, group=group, dry_run=dry_run)
    )
    return ImportReportOut.of(report)


@router.get("/{contact_id:int}", response_model=ContactOut, summary="One contact",
            responses=problem_responses(401, 403, 404, 422))
def get_contact(contact_id: ContactId, _key: ReadKey, book: Book) -> ContactOut:
    return ContactOut.of(book.get(contact_id))


@router.patch("/{contact_id:int}", response_model=ContactOut, summary="Change a contact",
              responses=problem_responses(401, 403, 404, 409, 422))
def update_contact(contact_id: ContactId, body: ContactPatch, key: SendKey,
                   book: Book) -> ContactOut:
    audit.note(audit.Actor.key(key.name), audit.Action.CONTACT_UPDATE, contact_id,
               {"changed": sorted(body.model_dump(exclude_unset=True))})
    return ContactOut.of(book.update(contact_id, number=body.number, first_name=body.first_name,
                                     last_name=body.last_name, name=body.name, fields=body.fields,
                                     groups=body.groups))


@router.delete("/{contact_id:int}", status_code=204, response_class=Response, summary="Delete a contact",
               responses=problem_responses(401, 403, 404, 422))
def delete_contact(contact_id: ContactId, key: SendKey, book: Book) -> Response:
    """Its group memberships go too; messages already sent to it stay."""
    audit.note(audit.Actor.key(key.name), audit.Action.CONTACT_ERASE, contact_id)
    book.delete(contact_id)
    return Response(status_code=204)
