"""The contact book: contacts, groups and the audiences broadcasts are sent to.

A contact is an E.164 number (unique), a first and last name and free fields (a JSON
object of strings). ``name`` is read and written as "first last": given alone it is split
at the first space. A group has static members and, optionally, a filter
(:mod:`appliance.contacts.filters`); its members are the union of both. Every method is
one short transaction on the queue's engine (SQLite or PostgreSQL) through
:mod:`appliance.db.contacts`; a CSV import is one transaction, so a fatal error leaves
nothing half-imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from appliance.contacts.csvio import read_csv, write_csv
from appliance.contacts.errors import ContactExists, ContactNotFound, GroupNotFound
from appliance.contacts.filters import FIELD_NAME, parse_filter
from appliance.db import contacts as contacts_db
from appliance.db.contacts import (
    ContactUpdate,
    ContactView,
    GroupRecord,
    GroupSelector,
    GroupView,
    NewContact,
    Recipient,
)
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.errors import ConstraintViolation
from appliance.db.rows import Page
from appliance.numbers import InvalidNumber, to_e164
from appliance.queue.errors import InvalidRequest

__all__ = [
    "RESERVED_FIELDS",
    "ContactBook",
    "ContactView",
    "GroupView",
    "ImportReport",
    "ImportRow",
    "Recipient",
]

RESERVED_FIELDS = frozenset({"number", "first_name", "last_name", "name", "groups"})


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One row of a CSV import worth reporting. ``status``: ``invalid`` (skipped),
    ``duplicate`` (same number as an earlier row: skipped) or ``merged`` (the number was
    already a contact: non-empty cells replaced its values)."""

    row: int  # the line in the file (the header is line 1)
    status: str
    number: str | None
    detail: str


@dataclass(slots=True)
class ImportReport:
    """What a CSV import did (or would do, with ``dry_run``)."""

    rows: int = 0
    created: int = 0
    merged: int = 0
    duplicates: int = 0
    invalid: int = 0
    group: str | None = None
    dry_run: bool = False
    columns: dict[str, str | None] = field(default_factory=dict)  # column → field (None: skipped)
    issues: list[ImportRow] = field(default_factory=list)


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def _check_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in fields.items():
        if not FIELD_NAME.fullmatch(key):
            raise InvalidRequest(field=f"fields.{key}", detail="a field name is letters, digits and _")
        if key in RESERVED_FIELDS:
            raise InvalidRequest(field=f"fields.{key}", detail=f"{key!r} is a contact attribute, not a free field")
        if value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidRequest(field=f"fields.{key}", detail="a field's value is text or a number")
        out[key] = str(value)
    return out


@dataclass(frozen=True, slots=True)
class _ParsedRow:
    """A CSV row that passed the checks: its line, number, names, free fields and groups."""

    line: int
    number: str
    first: str | None
    last: str | None
    fields: dict[str, str]
    groups: list[str]


class ContactBook:
    """Contacts and groups on ``engine`` (the queue's). Numbers are read in
    ``default_region`` when they have no ``+``."""

    def __init__(self, engine: Engine, *, default_region: str = "US",
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.default_region = default_region
        self.clock = clock

    def normalise(self, raw: str, field_name: str = "number") -> str:
        try:
            return to_e164(raw, self.default_region)
        except InvalidNumber as exc:
            raise InvalidRequest(field=field_name, detail=str(exc)) from None

    # ------------------------------------------------------------------ contacts

    def create(
        self, number: str, *, first_name: str | None = None, last_name: str | None = None,
        name: str | None = None, fields: Mapping[str, Any] | None = None, groups: Sequence[str] = (),
    ) -> ContactView:
        """A new contact; :class:`ContactExists` if the number has one already."""
        e164 = self.normalise(number)
        if name is not None and first_name is None and last_name is None:
            first_name, last_name = _split_name(name)
        free = _check_fields(fields or {})
        now = self.clock()
        with write_tx(self.engine) as tx:
            contacts_db.lock_numbers(tx)
            cid = contacts_db.insert_contact(tx, NewContact(e164, first_name or "", last_name or "", free), now)
            if cid is None:
                raise ContactExists(field="number", detail=f"{e164} is already a contact; update it instead")
            for g in groups:
                contacts_db.add_member(tx, self._group_id(tx, g), cid, now)
        return self.get(cid)

    def get(self, contact_id: int) -> ContactView:
        with read_tx(self.engine) as tx:
            found = contacts_db.get_contact(tx, contact_id)
        if found is None:
            raise ContactNotFound(f"contact {contact_id} does not exist")
        return found

    def get_by_number(self, number: str) -> ContactView:
        e164 = self.normalise(number)
        with read_tx(self.engine) as tx:
            found = contacts_db.get_contact_by_number(tx, e164)
        if found is None:
            raise ContactNotFound(f"{e164} is not a contact")
        return found

    def update(
        self, contact_id: int, *, number: str | None = None, first_name: str | None = None,
        last_name: str | None = None, name: str | None = None, fields: Mapping[str, Any] | None = None,
        groups: Sequence[str] | None = None,
    ) -> ContactView:
        """Change what is given. ``fields`` is merged (a ``None`` value removes the field);
        ``groups`` replaces the static memberships."""
        e164 = self.normalise(number) if number is not None else None
        if name is not None and first_name is None and last_name is None:
            first_name, last_name = _split_name(name)
        if fields is not None:
            _check_fields(fields)
        now = self.clock()
        with write_tx(self.engine) as tx:
            if e164 is not None:
                contacts_db.lock_numbers(tx)  # before the row lock, as every number writer
            current = contacts_db.get_contact(tx, contact_id, for_update=True)
            if current is None:
                raise ContactNotFound(f"contact {contact_id} does not exist")
            taken = ContactExists(field="number", detail=f"{e164} is already another contact")
            if e164 is not None and e164 != current.number and contacts_db.contact_id_of(tx, e164) is not None:
                raise taken
            merged = dict(current.fields)
            for key, value in (fields or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = str(value)
            try:
                contacts_db.update_contact(
                    tx, contact_id, number=current.number if e164 is None else e164,
                    first_name=current.first_name if first_name is None else first_name,
                    last_name=current.last_name if last_name is None else last_name,
                    fields=merged, now=now,
                )
            except ConstraintViolation:
                raise taken from None
            if groups is not None:
                contacts_db.replace_memberships(tx, contact_id, [self._group_id(tx, g) for g in groups], now)
        return self.get(contact_id)

    def delete(self, contact_id: int) -> None:
        with write_tx(self.engine) as tx:
            if not contacts_db.delete_contact(tx, contact_id):
                raise ContactNotFound(f"contact {contact_id} does not exist")

    def list(self, *, group: str | None = None, search: str | None = None, limit: int = 100,
             cursor: str | None = None) -> Page:
        """Contacts by id; in ``group`` (static or filter member) and/or whose number or name
        contains ``search`` (ignoring case)."""
        with read_tx(self.engine) as tx:
            selector = self._selector(self._group_row(tx, group)) if group is not None else None
            return contacts_db.list_contacts(tx, limit=limit, cursor=cursor, group=selector, search=search)

    def count(self) -> int:
        with read_tx(self.engine) as tx:
            return contacts_db.count_contacts(tx)

    # ------------------------------------------------------------------ groups

    @staticmethod
    def _group_row(tx: Tx, group: str | int) -> GroupRecord:
        found = contacts_db.find_group(tx, group)
        if found is None:
            raise GroupNotFound(f"group {group!r} does not exist; make it first (POST /v1/groups)")
        return found

    def _group_id(self, tx: Tx, name: str) -> int:
        """The id of group ``name``, made (static, no filter) if missing."""
        name = name.strip()
        if not name:
            raise InvalidRequest(field="group", detail="a group name is not empty")
        return contacts_db.ensure_group(tx, name, self.clock())

    @staticmethod
    def _selector(row: GroupRecord) -> GroupSelector:
        return GroupSelector(row.id, tuple(parse_filter(row.filter)) if row.filter else ())

    def _group_view(self, tx: Tx, row: GroupRecord) -> GroupView:
        return contacts_db.group_view(tx, row, self._selector(row).conditions)

    def create_group(self, name: str, *, description: str = "", filter: str | None = None) -> GroupView:
        name = name.strip()
        if not name:
            raise InvalidRequest(field="name", detail="a group name is not empty")
        if filter is not None and filter.strip():
            parse_filter(filter)
        else:
            filter = None
        now = self.clock()
        with write_tx(self.engine) as tx:
            gid = contacts_db.insert_group(tx, name, description=description, filter=filter, now=now)
            if gid is None:
                raise ContactExists(field="name", detail=f"a group called {name!r} exists already")
        return self.get_group(gid)

    def get_group(self, group: str | int) -> GroupView:
        with read_tx(self.engine) as tx:
            return self._group_view(tx, self._group_row(tx, group))

    def list_groups(self) -> list[GroupView]:
        with read_tx(self.engine) as tx:
            return [self._group_view(tx, r) for r in contacts_db.list_groups(tx)]

    def update_group(self, group: str | int, *, name: str | None = None, description: str | None = None,
                     filter: str | None = None) -> GroupView:
        """Change what is given; ``filter=""`` removes the filter."""
        if filter:
            parse_filter(filter)
        now = self.clock()
        new_name = None if name is None else name.strip()
        if new_name == "":
            raise InvalidRequest(field="name", detail="a group name is not empty")
        with write_tx(self.engine) as tx:
            row = self._group_row(tx, group)
            new_name = row.name if new_name is None else new_name
            taken = ContactExists(field="name", detail=f"a group called {new_name!r} exists already")
            if new_name != row.name and contacts_db.find_group(tx, new_name) is not None:
                raise taken
            try:
                contacts_db.update_group(
                    tx, row.id, name=new_name, description=row.description if description is None else description,
                    filter=row.filter if filter is None else (filter or None), now=now,
                )
            except ConstraintViolation:  # another node took the name meanwhile
                raise taken from None
        return self.get_group(row.id)

    def delete_group(self, group: str | int) -> None:
        """Delete the group (its contacts stay)."""
        with write_tx(self.engine) as tx:
            contacts_db.delete_group(tx, self._group_row(tx, group).id)

    def add_members(self, group: str | int, numbers: Iterable[str]) -> tuple[int, list[str]]:
        """Add contacts (by number) as static members; returns ``(added, numbers that are
        not contacts)``."""
        e164s = [self.normalise(n, "numbers") for n in numbers]
        now = self.clock()
        with write_tx(self.engine) as tx:
            return contacts_db.add_members_by_number(tx, self._group_row(tx, group).id, e164s, now)

    def remove_members(self, group: str | int, numbers: Iterable[str]) -> int:
        e164s = [self.normalise(n, "numbers") for n in numbers]
        with write_tx(self.engine) as tx:
            return contacts_db.remove_members_by_number(tx, self._group_row(tx, group).id, e164s)

    # ------------------------------------------------------------------ audiences

    def recipients(self, *, groups: Sequence[str] = (), numbers: Sequence[str] = ()) -> list[Recipient]:
        """The members of ``groups`` plus ``numbers`` (contacts' fields when they are
        contacts), each number once, in group order then contact id."""
        out: dict[str, Recipient] = {}
        with read_tx(self.engine) as tx:
            for group in groups:
                for r in contacts_db.group_recipients(tx, self._selector(self._group_row(tx, group))):
                    out.setdefault(r.number, r)
            wanted = [n for n in dict.fromkeys(numbers) if n not in out]
            known = contacts_db.recipients_by_number(tx, wanted)
        for number in wanted:
            out[number] = known.get(number) or Recipient(number, {"number": number})
        return list(out.values())

    # ------------------------------------------------------------------ CSV

    def import_csv(self, data: bytes | str, *, mapping: Mapping[str, str] | None = None,
                   group: str | None = None, dry_run: bool = False) -> ImportReport:
        """Import contacts from CSV (see :mod:`appliance.contacts.csvio` for columns).

        Each row is checked on its own: an invalid number skips the row (``invalid``); a
        number seen on an earlier row skips it (``duplicate``); a number that is already a
        contact updates it with the row's non-empty cells (``merged``); the rest are
        created. ``group`` adds every imported contact to that group (made if missing).
        All rows go in one transaction: on a fatal error nothing is written. Imports on
        several nodes at once take turns, so each number stays one contact.
        """
        table = read_csv(data, mapping)
        report = ImportReport(group=group, dry_run=dry_run,
                              columns=dict(zip(table.columns, table.fields, strict=True)))
        width = len(table.columns)
        first_seen: dict[str, int] = {}
        parsed: list[_ParsedRow] = []
        for line, cells in table.rows:
            report.rows += 1
            if len(cells) > width:
                report.invalid += 1
                report.issues.append(ImportRow(line, "invalid", None,
                                               f"the row has {len(cells)} cells; the header names {width} columns"))
                continue
            values = {f: cells[i].strip() for i, f in enumerate(table.fields) if f is not None and i < len(cells)}
            raw_number = values.pop("number", "")
            try:
                number = to_e164(raw_number, self.default_region)
            except InvalidNumber as exc:
                report.invalid += 1
                report.issues.append(ImportRow(line, "invalid", raw_number or None, str(exc)))
                continue
            if number in first_seen:
                report.duplicates += 1
                report.issues.append(ImportRow(line, "duplicate", number,
                                               f"same number as row {first_seen[number]}; row skipped"))
                continue
            first_seen[number] = line
            first, last = values.pop("first_name", None), values.pop("last_name", None)
            name = values.pop("name", None)
            if name and not first and not last:
                first, last = _split_name(name)
            group_names = [g.strip() for g in values.pop("groups", "").split(";") if g.strip()]
            free = {k: v for k, v in values.items() if v != ""}
            parsed.append(_ParsedRow(line, number, first or None, last or None, free, group_names))
        if dry_run:
            with read_tx(self.engine) as tx:
                self._plan(tx, parsed, report)
            return report
        now = self.clock()
        with write_tx(self.engine) as tx:
            contacts_db.lock_numbers(tx)  # what exists now stays so until this commits
            inserts, updates = self._plan(tx, parsed, report)
            contacts_db.insert_contacts(tx, inserts, now)
            contacts_db.update_contacts(tx, updates, now)
            memberships: list[tuple[int, str]] = []
            group_ids: dict[str, int] = {}
            for row in parsed:
                for g in ([group] if group else []) + row.groups:
                    if g not in group_ids:
                        group_ids[g] = self._group_id(tx, g)
                    memberships.append((group_ids[g], row.number))
            contacts_db.add_memberships_by_number(tx, memberships, now)
        return report

    @staticmethod
    def _plan(tx: Tx, parsed: Sequence[_ParsedRow],
              report: ImportReport) -> tuple[list[NewContact], list[ContactUpdate]]:
        """The contacts to create and to update for ``parsed``; counts them in ``report``."""
        existing = contacts_db.contacts_by_number(tx, [p.number for p in parsed])
        inserts: list[NewContact] = []
        updates: list[ContactUpdate] = []
        for p in parsed:
            old = existing.get(p.number)
            if old is None:
                report.created += 1
                inserts.append(NewContact(p.number, p.first or "", p.last or "", p.fields))
                continue
            report.merged += 1
            changed = [k for k, v in (("first_name", p.first), ("last_name", p.last)) if v]
            changed += sorted(p.fields)
            report.issues.append(ImportRow(
                p.line, "merged", p.number,
                f"already a contact; updated {', '.join(changed)}" if changed else "already a contact; nothing new",
            ))
            updates.append(ContactUpdate(old.id, p.first or old.first_name, p.last or old.last_name,
                                         {**old.fields, **p.fields}))
        return inserts, updates

    def export_csv(self, *, group: str | None = None) -> str:
        """Every contact (or a group's) as CSV: number, first_name, last_name, the free
        fields (sorted) and ``groups`` (static, ``;``-separated). Importing it back gives
        the same contacts."""
        rows: list[dict[str, str]] = []
        keys: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.list(group=group, limit=1000, cursor=cursor)
            for c in page.items:
                keys.update(c.fields)
                rows.append({"number": c.number, "first_name": c.first_name, "last_name": c.last_name,
                             **c.fields, "groups": ";".join(c.groups)})
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return write_csv(rows, ["number", "first_name", "last_name", *sorted(keys), "groups"])
