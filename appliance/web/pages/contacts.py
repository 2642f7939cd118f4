"""Contacts (list, search, add, CSV import with the row report, export) and groups."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from appliance import audit
from appliance.api.deps import CheckedForm, ServicesDep, SignedIn, contact_book
from appliance.contacts import ContactBook, ContactExists, CsvError, FilterError, GroupNotFound, write_csv
from appliance.numbers import InvalidNumber, one_number, read_numbers
from appliance.queue.errors import InvalidRequest
from appliance.web.forms import field_errors
from appliance.web.render import page, redirect

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
MAX_GROUP_NUMBERS = 5000



def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------------- contacts


def _contacts_page(
    request: Request, book: ContactBook, *, q: str = "", group: str = "", cursor: str | None = None,
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None, status_code: int = 200,
) -> Response:
    problem: str | None = None
    contacts, next_cursor = [], None
    try:
        listing = book.list(group=group or None, search=q or None, limit=PAGE_SIZE, cursor=cursor)
        contacts, next_cursor = listing.items, listing.next_cursor
    except GroupNotFound:
        problem = f"There is no group called “{group}”."
    except InvalidRequest as exc:
        problem = str(exc)
    return page(
        request, "contacts.html", status_code=status_code, title="Contacts",
        contacts=contacts, next_cursor=next_cursor, cursor=cursor, q=q, group=group, problem=problem,
        total=book.count(), groups=book.list_groups(), errors=errors or {}, values=values or {},
        # The whole request is capped (appliance.api's body limit); leave room for the form.
        max_upload_bytes=request.app.state.max_request_bytes - 64 * 1024,
        max_upload_mb=request.app.state.max_request_bytes // (1024 * 1024),
    )


@router.get("/contacts", response_class=HTMLResponse)
def contacts(request: Request, _session: SignedIn, services: ServicesDep, q: str = "", group: str = "",
             cursor: str | None = None) -> Response:
    return _contacts_page(request, contact_book(services), q=q.strip()[:100], group=group.strip(),
                          cursor=cursor or None)


@router.post("/contacts", response_class=HTMLResponse)
def add_contact(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    book = contact_book(services)
    values = {k: _text(form, k) for k in ("number", "first_name", "last_name")}
    try:
        number = one_number(values["number"], book.default_region)
        audit.note(audit.Actor.user(request.state.session.user.username), audit.Action.CONTACT_CREATE,
                   audit.masked(number))
        contact = book.create(number, first_name=values["first_name"], last_name=values["last_name"])
    except (InvalidNumber, InvalidRequest, ContactExists) as exc:
        return _contacts_page(request, book, errors=field_errors(exc, "number"), values=values, status_code=422)
    label = f"{contact.name} ({contact.number})" if contact.name else contact.number
    return redirect("/contacts?q=" + contact.number.replace("+", "%2B"), flash=f"Added {label}.")


@router.post("/contacts/import", response_class=HTMLResponse)
async def import_contacts(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    import anyio

    book = contact_book(services)
    upload = form.get("file")
    group = _text(form, "group") or None
    values = {"group": group or ""}
    error: str | None = None
    data = b""
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = "Choose a CSV file to import."
    else:
        data = await upload.read()
        if not data.strip():
            error = f"{upload.filename} is empty. Choose a CSV file whose first line names the columns."
    if error is not None:
        return _contacts_page(request, book, errors={"file": error}, values=values, status_code=422)
    try:
        audit.note(audit.Actor.user(request.state.session.user.username), audit.Action.CONTACT_IMPORT, group,
                   {"bytes": len(data)})
        report = await anyio.to_thread.run_sync(lambda: book.import_csv(data, group=group))
    except CsvError as exc:
        return _contacts_page(request, book, errors=field_errors(exc, "file", rename={"csv": "file"}),
                              values=values, status_code=422)
    except InvalidRequest as exc:
        return _contacts_page(request, book, errors=field_errors(exc, "file"), values=values, status_code=422)
    filename = upload.filename if isinstance(upload, UploadFile) else ""
    return page(request, "contacts_import.html", title="Import report", report=report, filename=filename)


@router.get("/contacts/export.csv")
def export_contacts(_session: SignedIn, services: ServicesDep, group: str = "") -> Response:
    try:
        text = contact_book(services).export_csv(group=group.strip() or None)
    except GroupNotFound as exc:
        return Response(f"{exc}\n", status_code=404, media_type="text/plain; charset=utf-8")
    name = f"contacts-{re.sub(r'[^A-Za-z0-9_-]+', '_', group)}.csv" if group else "contacts.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# ---------------------------------------------------------------------- groups


def _groups_page(request: Request, book: ContactBook, *, errors: dict[str, str] | None = None,
                 values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return page(request, "groups.html", status_code=status_code, title="Groups", groups=book.list_groups(),
                errors=errors or {}, values=values or {})


@router.get("/groups", response_class=HTMLResponse)
def groups(request: Request, _session: SignedIn, services: ServicesDep) -> Response:
    return _groups_page(request, contact_book(services))


@router.post("/groups", response_class=HTMLResponse)
def create_group(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    book = contact_book(services)
    values = {k: _text(form, k) for k in ("name", "description", "filter", "numbers")}
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Give the group a name."
    typed = read_numbers(values["numbers"], book.default_region)
    numbers, bad = typed.numbers, [entry for entry, _ in typed.unreadable]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        errors["numbers"] = f"Not phone numbers: {shown}. Fix or remove them."
    elif len(numbers) > MAX_GROUP_NUMBERS:
        errors["numbers"] = f"At most {MAX_GROUP_NUMBERS:,} numbers at once; import a CSV file for more."
    if errors:
        return _groups_page(request, book, errors=errors, values=values, status_code=422)
    try:
        audit.note(audit.Actor.user(request.state.session.user.username), audit.Action.GROUP_CREATE, values["name"])
        made = book.create_group(values["name"], description=values["description"], filter=values["filter"] or None)
    except FilterError as exc:
        return _groups_page(request, book, errors=field_errors(exc, "filter"), values=values, status_code=422)
    except (InvalidRequest, ContactExists) as exc:
        return _groups_page(request, book, errors=field_errors(exc, "name"), values=values, status_code=422)
    if numbers:
        # Numbers not yet in the book become contacts, so they can be static members.
        book.import_csv(write_csv([{"number": n} for n in numbers], ["number"]), group=made.name)
    members = book.get_group(made.id).members
    noun = "member" if members == 1 else "members"
    return redirect("/groups", flash=f"Group “{made.name}” made with {members:,} {noun}.")
