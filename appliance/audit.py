"""The audit trail's public face: who acts (:class:`Actor`), recording a change in its own
transaction (:func:`note`, :func:`write`) or on its own (:func:`record`), and reading the
trail (:class:`AuditLog`). docs/architecture.md, "Audit trail and approval".

A route records with one line before the call that makes the change::

    audit.note(audit.Actor.key(key.name), audit.Action.MESSAGE_CANCEL, message_id)
    services.queue.cancel(message_id, ...)

``note`` queues the line for the next write transaction of the request, which commits it
with the change (or drops it with a rollback). Changes whose id is known only inside their
transaction (a send: :func:`on_send`) or on what it changed (an opt-out: :func:`if_changed`)
write the line from the change's ``within``/``guard`` callback (:func:`write`).
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.db import audit as audit_db
from appliance.db.audit import ACTOR_KINDS, Action, ActorKind, AuditEvent, AuditFilter
from appliance.db.engine import Tx, before_next_commit, commit_steps_scope, read_tx, write_tx
from appliance.db.rows import Page
from appliance.numbers import mask

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ACTOR_KINDS",
    "Action",
    "Actor",
    "ActorKind",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "ClientAddress",
    "masked",
    "note",
    "number_ref",
    "cli_note",
    "if_changed",
    "on_send",
    "record",
    "write",
]

# The client address of the HTTP request being handled (set by ClientAddress).
_address: ContextVar[str | None] = ContextVar("audit_address", default=None)


class ClientAddress:
    """ASGI middleware: keeps each HTTP request's client address where :class:`Actor`
    finds it (so routes need not take the request to record who acted), and scopes the
    lines :func:`note` queues to the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = _address.set(client[0] if client else None)
        try:
            with commit_steps_scope():
                await self.app(scope, receive, send)
        finally:
            _address.reset(token)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``kind`` (user, key, cli, system), ``name`` and ``address`` (the client's
    IP; for the command line the OS user)."""

    kind: ActorKind
    name: str
    address: str | None = None

    @classmethod
    def user(cls, username: str) -> Actor:
        """A signed-in web user (address: this request's client)."""
        return cls(ActorKind.USER, username, _address.get())

    @classmethod
    def key(cls, key_name: str) -> Actor:
        """An API key, by its name (address: this request's client)."""
        return cls(ActorKind.KEY, key_name, _address.get())

    @classmethod
    def cli(cls) -> Actor:
        """The command line, as the OS user running it."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container)
            user = f"uid {os.getuid()}"
        return cls(ActorKind.CLI, user, f"local:{user}")

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(ActorKind.SYSTEM, name)

    @property
    def label(self) -> str:
        """``web:alice``, ``api:ci-key``, ``cli:root`` or ``system:name``: one identity
        across kinds (a web user and a key of the same name are different people)."""
        prefix = {ActorKind.USER: "web", ActorKind.KEY: "api"}.get(self.kind, str(self.kind))
        return f"{prefix}:{self.name}"


def masked(number: str | None) -> str:
    """A phone number as the trail shows it (:func:`appliance.numbers.mask`)."""
    return mask(number)


def number_ref(number: str) -> str:
    """A number named so staff can match it without the trail holding it: the masked form
    and the first 10 hex digits of its SHA-256 (``/audit?number=`` computes the same)."""
    return f"{mask(number)} #{hashlib.sha256(number.encode()).hexdigest()[:10]}"


def write(tx: Tx, actor: Actor, action: Action, target: str | int | None = None,
          detail: Mapping[str, Any] | None = None) -> None:
    """Append the line in ``tx`` (the transaction of the change itself)."""
    audit_db.insert_event(
        tx, actor_kind=actor.kind, actor=actor.name, address=actor.address, action=action,
        target=None if target is None else str(target), detail=dict(detail) if detail else None,
    )


def note(actor: Actor, action: Action, target: str | int | None = None,
         detail: Mapping[str, Any] | None = None, *, engine: Engine | None = None) -> None:
    """Append the line in the next write transaction of this request (or thread) — on
    ``engine`` if given: the one that makes the change. Nothing is written if no write
    follows (a refused request) or that transaction fails."""
    before_next_commit(lambda tx: write(tx, actor, action, target, detail), engine=engine)


def if_changed(actor: Actor, action: Action, target: str | int | None = None,
               detail: Mapping[str, Any] | None = None) -> Callable[[Tx, bool], None]:
    """A ``within(tx, changed)`` callback writing the line only when something changed
    (an opt-out added, not one already there)."""
    def step(tx: Tx, changed: bool) -> None:
        if changed:
            write(tx, actor, action, target, detail)
    return step


def on_send(actor: Actor, to: Sequence[str], detail: Mapping[str, Any] | None = None
            ) -> Callable[[Tx, list[int]], None]:
    """An enqueue's ``within(tx, ids)`` callback: one ``message.send`` line for the request,
    its target the first message id, the detail the ids and the masked recipients."""
    def step(tx: Tx, ids: list[int]) -> None:
        shown = [mask(n) for n in to[:20]]
        write(tx, actor, Action.MESSAGE_SEND, ids[0] if ids else None,
              {**(detail or {}), "ids": ids[:100], "count": len(ids), "to": shown})
    return step


def cli_note(engine: Engine, action: Action, target: str | int | None = None,
             detail: Mapping[str, Any] | None = None) -> None:
    """:func:`note` for a command-line verb changing ``engine``'s database (the OS user acts)."""
    note(Actor.cli(), action, target, detail, engine=engine)


def record(engine: Engine, actor: Actor, action: Action, target: str | int | None = None,
           detail: Mapping[str, Any] | None = None) -> None:
    """Append the line in a transaction of its own: for actions that write nothing else
    (a privacy export) or whose change is not in the database (a modem resumed)."""
    with write_tx(engine) as tx:
        write(tx, actor, action, target, detail)


class AuditLog:
    """Reading the trail of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, where: AuditFilter = AuditFilter(), *, limit: int = 50, cursor: str | None = None) -> Page:
        """Lines newest first (:func:`appliance.db.audit.list_events`)."""
        with read_tx(self.engine) as tx:
            return audit_db.list_events(tx, where, limit=limit, cursor=cursor)
