"""The inbox: replies grouped as threads by number, and one number's conversation.

The thread list (:func:`appliance.db.threads.list_threads`) is newest thread first,
:data:`THREADS_PER_PAGE` a page with a keyset cursor (the thread's last time and number).
A thread shows the latest :data:`THREAD_MESSAGES` messages each way.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from appliance.api.deps import ServicesDep, SignedIn, contact_book
from appliance.api.services import Services
from appliance.db import consent
from appliance.db import threads as threads_db
from appliance.db.engine import read_tx
from appliance.db.errors import InvalidRequest
from appliance.db.threads import ThreadEntry
from appliance.numbers import InvalidNumber, to_e164
from appliance.web.render import page

__all__ = ["THREADS_PER_PAGE", "THREAD_MESSAGES", "ThreadEntry", "ThreadRow", "conversation", "router", "thread_rows"]

router = APIRouter(include_in_schema=False)

THREADS_PER_PAGE = 200
THREAD_MESSAGES = 200


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """One sender in the inbox: its latest message and how many it sent."""

    number: str
    name: str | None
    body: str
    keyword: str | None
    last_at: float
    count: int
    opted_out: bool


def _names_and_opt_outs(services: Services, numbers: list[str]) -> tuple[dict[str, str], set[str]]:
    """Contact names (for numbers in the book) and which numbers are opted out."""
    names = {
        r.number: r.fields.get("name", "") for r in contact_book(services).recipients(numbers=numbers)
        if r.fields.get("name")
    }
    with read_tx(services.queue.engine) as conn:
        opted = consent.opted_out_among(conn, numbers)
    return names, opted


def thread_rows(services: Services, *, q: str = "", cursor: str | None = None,
                limit: int = THREADS_PER_PAGE) -> tuple[list[ThreadRow], str | None]:
    """Threads newest first (messages matching ``q`` by number or text only), and the
    cursor of the next page; a cursor this server did not hand out is an
    :class:`~appliance.db.errors.InvalidRequest` naming ``cursor``."""
    with read_tx(services.queue.engine) as tx:
        found = threads_db.list_threads(tx, q=q, cursor=cursor, limit=limit)
    shown: list[threads_db.ThreadSummary] = found.items
    names, opted = _names_and_opt_outs(services, [t.sender for t in shown])
    rows = [ThreadRow(t.sender, names.get(t.sender), t.body, t.keyword, t.last_at, t.count, t.sender in opted)
            for t in shown]
    return rows, found.next_cursor


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, _session: SignedIn,
          services: ServicesDep, q: str = "",
          cursor: str | None = None) -> Response:
    q = q.strip()[:100]
    try:
        threads, next_cursor = thread_rows(services, q=q, cursor=cursor or None)
    except InvalidRequest as exc:
        return page(request, "error.html", status_code=422, title="Inbox", message=str(exc))
    return page(request, "inbox.html", title="Inbox", threads=threads, next_cursor=next_cursor,
                cursor=cursor, q=q, per_page=THREADS_PER_PAGE)


def conversation(services: Services, number: str, *, limit: int = THREAD_MESSAGES) -> list[ThreadEntry]:
    """The latest ``limit`` messages from and to ``number``, oldest first."""
    with read_tx(services.queue.engine) as tx:
        return threads_db.conversation(tx, number, limit=limit)


@router.get("/inbox/{number}", response_class=HTMLResponse)
def thread(request: Request, number: str, _session: SignedIn,
           services: ServicesDep) -> Response:
    try:
        e164 = to_e164(number, services.settings.appliance.default_region)
    except InvalidNumber as exc:
        # A sender that is a name ("MyBank", a network's service texts): its messages can be
        # read, though nobody can text it back.
        if not number.strip() or not services.queue.list_inbound(limit=1, sender=number).items:
            return page(request, "error.html", status_code=404, title="No such conversation",
                        message=f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        return page(request, "thread.html", title=f"Messages from {number}", number=number, name=None,
                    opted_out=False, entries=conversation(services, number), limit=THREAD_MESSAGES,
                    replyable=False)
    names, opted = _names_and_opt_outs(services, [e164])
    entries = conversation(services, e164)
    return page(request, "thread.html", title=f"Messages with {names.get(e164) or e164}", number=e164,
                name=names.get(e164), opted_out=e164 in opted, entries=entries, limit=THREAD_MESSAGES,
                replyable=True)
