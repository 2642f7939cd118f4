"""The contact book: contacts, groups and the audiences broadcasts are sent to.

A contact is an E.164 number (unique), a first and last name and free fields (a JSON
object of strings). ``name`` is read and written as "first last": given alone it is split
at the first space. A group has static members and, optionally, a filter
(:mod:`appliance.contacts.filters`); its members are the union of both. Every method is
one short transaction on the queue's SQLite engine; a CSV import is one transaction, so a
fatal error leaves nothing half-imported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from appliance.contacts.csvio import read_csv, write_csv
from appliance.contacts.errors import ContactExists, ContactNotFound, GroupNotFound
from appliance.contacts.filters import FIELD_NAME, compile_filter
from appliance.numbers import InvalidNumber, to_e164
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.queue.errors import InvalidRequest
from appliance.db.rows import Page, decode_cursor, encode_cursor

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
_CHUNK = 900  # SQLite's default limit on host parameters is 999 (32766 on newer builds)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class ContactView:
    id: int
    number: str
    first_name: str
    last_name: str
    fields: dict[str, str]
    groups: tuple[str, ...]  # static memberships (a filter group is not listed)
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class GroupView:
    id: int
    name: str
    description: str
    filter: str | None
    static_members: int
    members: int  # static plus filter matches
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient of a broadcast: the number and the fields its template may use."""

    number: str
    fields: dict[str, str]


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
            raise InvalidRequest(f"fields.{key}: a field name is letters, digits and _")
        if key in RESERVED_FIELDS:
            raise InvalidRequest(f"fields.{key}: {key!r} is a contact attribute, not a free field")
        if value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidRequest(f"fields.{key}: a field's value is text or a number")
        out[key] = str(value)
    return out


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
            raise InvalidRequest(f"{field_name}: {exc}") from None

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
        with write_tx(self.engine) as conn:
            cid = conn.exec_driver_sql(
                "INSERT INTO contacts (number, first_name, last_name, fields_json, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(number) DO NOTHING RETURNING id",
                (e164, first_name or "", last_name or "", json.dumps(free, sort_keys=True), now, now),
            ).scalar()
            if cid is None:
                raise ContactExists(f"number: {e164} is already a contact; update it instead")
            for g in groups:
                conn.exec_driver_sql(
                    "INSERT OR IGNORE INTO group_members (group_id, contact_id, added_at) VALUES (?, ?, ?)",
                    (self._group_id(conn, g), cid, now),
                )
        return self.get(cid)

    def get(self, contact_id: int) -> ContactView:
        with read_tx(self.engine) as conn:
            return self._view(conn, "c.id = ?", (contact_id,), f"contact {contact_id} does not exist")

    def get_by_number(self, number: str) -> ContactView:
        e164 = self.normalise(number)
        with read_tx(self.engine) as conn:
            return self._view(conn, "c.number = ?", (e164,), f"{e164} is not a contact")

    def _view(self, conn: Tx, where: str, args: Sequence[Any], missing: str) -> ContactView:
        row = conn.exec_driver_sql(
            f"SELECT c.id, c.number, c.first_name, c.last_name, c.fields_json, c.created_at, c.updated_at "
            f"FROM contacts c WHERE {where}", tuple(args)
        ).first()
        if row is None:
            raise ContactNotFound(missing)
        return self._views(conn, [row])[0]

    @staticmethod
    def _views(conn: Tx, rows: Sequence[Any]) -> list[ContactView]:
        groups: dict[int, list[str]] = {}
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for cid, gname in conn.exec_driver_sql(
                "SELECT m.contact_id, g.name FROM group_members m JOIN contact_groups g ON g.id = m.group_id "
                f"WHERE m.contact_id IN ({','.join('?' * len(chunk))}) ORDER BY g.name", tuple(chunk)
            ):
                groups.setdefault(cid, []).append(gname)
        return [
            ContactView(r[0], r[1], r[2], r[3], json.loads(r[4]), tuple(groups.get(r[0], ())), _dt(r[5]), _dt(r[6]))
            for r in rows
        ]

    def update(
        self, contact_id: int, *, number: str | None = None, first_name: str | None = None,
        last_name: str | None = None, name: str | None = None, fields: Mapping[str, Any] | None = None,
        groups: Sequence[str] | None = None,
    ) -> ContactView:
        """Change what is given. ``fields`` is merged (a ``None`` value removes the field);
        ``groups`` replaces the static memberships."""
        current = self.get(contact_id)
        e164 = self.normalise(number) if number is not None else current.number
        if name is not None and first_name is None and last_name is None:
            first_name, last_name = _split_name(name)
        merged = dict(current.fields)
        if fields is not None:
            _check_fields(fields)
            for key, value in fields.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = str(value)
        now = self.clock()
        with write_tx(self.engine) as conn:
            if e164 != current.number and conn.exec_driver_sql(
                "SELECT 1 FROM contacts WHERE number = ?", (e164,)
            ).first():
                raise ContactExists(f"number: {e164} is already another contact")
            conn.exec_driver_sql(
                "UPDATE contacts SET number = ?, first_name = ?, last_name = ?, fields_json = ?, updated_at = ? "
                "WHERE id = ?",
                (e164, current.first_name if first_name is None else first_name,
                 current.last_name if last_name is None else last_name,
                 json.dumps(merged, sort_keys=True), now, contact_id),
            )
            if groups is not None:
                conn.exec_driver_sql("DELETE FROM group_members WHERE contact_id = ?", (contact_id,))
                for g in groups:
                    conn.exec_driver_sql(
                        "INSERT OR IGNORE INTO group_members (group_id, contact_id, added_at) VALUES (?, ?, ?)",
                        (self._group_id(conn, g), contact_id, now),
                    )
        return self.get(contact_id)

    def delete(self, contact_id: int) -> None:
        with write_tx(self.engine) as conn:
            if not conn.exec_driver_sql("DELETE FROM contacts WHERE id = ?", (contact_id,)).rowcount:
                raise ContactNotFound(f"contact {contact_id} does not exist")

    def list(self, *, group: str | None = None, search: str | None = None, limit: int = 100,
             cursor: str | None = None) -> Page:
        """Contacts by id; in ``group`` (static or filter member) and/or whose number or name
        contains ``search``."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        after = decode_cursor("c", cursor)
        where, args = ["c.id > ?"], [int(after or 0)]
        with read_tx(self.engine) as conn:
            if group is not None:
                gsql, gargs = self._group_condition(conn, group)
                where.append(f"({gsql})")
                args.extend(gargs)
            if search:
                where.append("(c.number LIKE ? OR (c.first_name || ' ' || c.last_name) LIKE ?)")
                args.extend([f"%{search}%"] * 2)
            rows = conn.exec_driver_sql(
                "SELECT c.id, c.number, c.first_name, c.last_name, c.fields_json, c.created_at, c.updated_at "
                f"FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.id LIMIT ?", (*args, limit + 1)
            ).all()
            items = self._views(conn, rows[:limit])
        return Page(items, encode_cursor("c", items[-1].id) if len(rows) > limit else None)

    def count(self) -> int:
        with read_tx(self.engine) as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM contacts").scalar_one())

    # ------------------------------------------------------------------ groups

    @staticmethod
    def _group_row(conn: Tx, group: str | int) -> Any:
        if isinstance(group, int) or (isinstance(group, str) and group.isdigit()):
            row = conn.exec_driver_sql(
                "SELECT id, name, description, filter, created_at, updated_at FROM contact_groups WHERE id = ?",
                (int(group),),
            ).first()
            if row is not None:
                return row
        row = conn.exec_driver_sql(
            "SELECT id, name, description, filter, created_at, updated_at FROM contact_groups WHERE name = ?",
            (str(group),),
        ).first()
        if row is None:
            raise GroupNotFound(f"group {group!r} does not exist; make it first (POST /v1/groups)")
        return row

    def _group_id(self, conn: Tx, name: str, *, create: bool = True) -> int:
        """The id of group ``name``; made (static, no filter) if missing and ``create``."""
        name = name.strip()
        if not name:
            raise InvalidRequest("group: a group name is not empty")
        row = conn.exec_driver_sql("SELECT id FROM contact_groups WHERE name = ?", (name,)).first()
        if row is not None:
            return int(row[0])
        if not create:
            raise GroupNotFound(f"group {name!r} does not exist")
        now = self.clock()
        return int(conn.exec_driver_sql(
            "INSERT INTO contact_groups (name, description, filter, created_at, updated_at) "
            "VALUES (?, '', NULL, ?, ?) RETURNING id", (name, now, now)
        ).scalar_one())

    def _group_condition(self, conn: Tx, group: str | int) -> tuple[str, list[Any]]:
        row = self._group_row(conn, group)
        sql = "c.id IN (SELECT contact_id FROM group_members WHERE group_id = ?)"
        args: list[Any] = [row[0]]
        if row[3]:
            fsql, fargs = compile_filter(row[3])
            sql = f"{sql} OR ({fsql})"
            args.extend(fargs)
        return sql, args

    def _group_view(self, conn: Tx, row: Any) -> GroupView:
        static = conn.exec_driver_sql("SELECT COUNT(*) FROM group_members WHERE group_id = ?", (row[0],)).scalar_one()
        members = static
        if row[3]:
            gsql, gargs = self._group_condition(conn, row[0])
            members = conn.exec_driver_sql(f"SELECT COUNT(*) FROM contacts c WHERE {gsql}", tuple(gargs)).scalar_one()
        return GroupView(row[0], row[1], row[2], row[3], int(static), int(members), _dt(row[4]), _dt(row[5]))

    def create_group(self, name: str, *, description: str = "", filter: str | None = None) -> GroupView:
        name = name.strip()
        if not name:
            raise InvalidRequest("name: a group name is not empty")
        if filter is not None and filter.strip():
            compile_filter(filter)
        else:
            filter = None
        now = self.clock()
        with write_tx(self.engine) as conn:
            gid = conn.exec_driver_sql(
                "INSERT INTO contact_groups (name, description, filter, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO NOTHING RETURNING id", (name, description, filter, now, now)
            ).scalar()
            if gid is None:
                raise ContactExists(f"name: a group called {name!r} exists already")
        return self.get_group(gid)

    def get_group(self, group: str | int) -> GroupView:
        with read_tx(self.engine) as conn:
            return self._group_view(conn, self._group_row(conn, group))

    def list_groups(self) -> list[GroupView]:
        with read_tx(self.engine) as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, name, description, filter, created_at, updated_at FROM contact_groups ORDER BY name"
            ).all()
            return [self._group_view(conn, r) for r in rows]

    def update_group(self, group: str | int, *, name: str | None = None, description: str | None = None,
                     filter: str | None = None) -> GroupView:
        """Change what is given; ``filter=""`` removes the filter."""
        if filter:
            compile_filter(filter)
        now = self.clock()
        with write_tx(self.engine) as conn:
            row = self._group_row(conn, group)
            new_name = row[1] if name is None else name.strip()
            if not new_name:
                raise InvalidRequest("name: a group name is not empty")
            if new_name != row[1] and conn.exec_driver_sql(
                "SELECT 1 FROM contact_groups WHERE name = ?", (new_name,)
            ).first():
                raise ContactExists(f"name: a group called {new_name!r} exists already")
            conn.exec_driver_sql(
                "UPDATE contact_groups SET name = ?, description = ?, filter = ?, updated_at = ? WHERE id = ?",
                (new_name, row[2] if description is None else description,
                 row[3] if filter is None else (filter or None), now, row[0]),
            )
        return self.get_group(row[0])

    def delete_group(self, group: str | int) -> None:
        """Delete the group (its contacts stay)."""
        with write_tx(self.engine) as conn:
            row = self._group_row(conn, group)
            conn.exec_driver_sql("DELETE FROM contact_groups WHERE id = ?", (row[0],))

    def add_members(self, group: str | int, numbers: Iterable[str]) -> tuple[int, list[str]]:
        """Add contacts (by number) as static members; returns ``(added, numbers that are
        not contacts)``."""
        e164s = [self.normalise(n, "numbers") for n in numbers]
        now = self.clock()
        added, missing = 0, []
        with write_tx(self.engine) as conn:
            gid = self._group_row(conn, group)[0]
            for number in e164s:
                cid = conn.exec_driver_sql("SELECT id FROM contacts WHERE number = ?", (number,)).scalar()
                if cid is None:
                    missing.append(number)
                    continue
                added += conn.exec_driver_sql(
                    "INSERT OR IGNORE INTO group_members (group_id, contact_id, added_at) VALUES (?, ?, ?)",
                    (gid, cid, now),
                ).rowcount
        return added, missing

    def remove_members(self, group: str | int, numbers: Iterable[str]) -> int:
        e164s = [self.normalise(n, "numbers") for n in numbers]
        with write_tx(self.engine) as conn:
            gid = self._group_row(conn, group)[0]
            return sum(
                conn.exec_driver_sql(
                    "DELETE FROM group_members WHERE group_id = ? AND contact_id = "
                    "(SELECT id FROM contacts WHERE number = ?)", (gid, n)
                ).rowcount
                for n in e164s
            )

    # ------------------------------------------------------------------ audiences

    def recipients(self, *, groups: Sequence[str] = (), numbers: Sequence[str] = ()) -> list[Recipient]:
        """The members of ``groups`` plus ``numbers`` (contacts' fields when they are
        contacts), each number once, in group order then contact id."""
        out: dict[str, Recipient] = {}
        with read_tx(self.engine) as conn:
            for group in groups:
                gsql, gargs = self._group_condition(conn, group)
                for row in conn.exec_driver_sql(
                    f"SELECT c.number, c.first_name, c.last_name, c.fields_json FROM contacts c WHERE {gsql} "
                    "ORDER BY c.id", tuple(gargs)
                ):
                    if row[0] not in out:
                        out[row[0]] = Recipient(row[0], _fields(row))
            wanted = [n for n in dict.fromkeys(numbers) if n not in out]
            known: dict[str, Any] = {}
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i:i + _CHUNK]
                for row in conn.exec_driver_sql(
                    "SELECT number, first_name, last_name, fields_json FROM contacts "
                    f"WHERE number IN ({','.join('?' * len(chunk))})", tuple(chunk)
                ):
                    known[row[0]] = row
            for number in wanted:
                row = known.get(number)
                out[number] = Recipient(number, _fields(row) if row else {"number": number})
        return list(out.values())

    # ------------------------------------------------------------------ CSV

    def import_csv(self, data: bytes | str, *, mapping: Mapping[str, str] | None = None,
                   group: str | None = None, dry_run: bool = False) -> ImportReport:
        """Import contacts from CSV (see :mod:`appliance.contacts.csvio` for columns).

        Each row is checked on its own: an invalid number skips the row (``invalid``); a
        number seen on an earlier row skips it (``duplicate``); a number that is already a
        contact updates it with the row's non-empty cells (``merged``); the rest are
        created. ``group`` adds every imported contact to that group (made if missing).
        All rows go in one transaction: on a fatal error nothing is written.
        """
        table = read_csv(data, mapping)
        report = ImportReport(group=group, dry_run=dry_run,
                              columns=dict(zip(table.columns, table.fields, strict=True)))
        width = len(table.columns)
        first_seen: dict[str, int] = {}
        parsed: list[tuple[int, str, str | None, str | None, dict[str, str], list[str]]] = []
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
            parsed.append((line, number, first or None, last or None, free, group_names))
        now = self.clock()
        with write_tx(self.engine) as conn:
            existing: dict[str, tuple[int, str, str, str]] = {}
            numbers = [p[1] for p in parsed]
            for i in range(0, len(numbers), _CHUNK):
                chunk = numbers[i:i + _CHUNK]
                for row in conn.exec_driver_sql(
                    "SELECT number, id, first_name, last_name, fields_json FROM contacts "
                    f"WHERE number IN ({','.join('?' * len(chunk))})", tuple(chunk)
                ):
                    existing[row[0]] = row[1:]
            inserts, updates = [], []
            for line, number, first, last, free, _groups in parsed:
                old = existing.get(number)
                if old is None:
                    report.created += 1
                    inserts.append((number, first or "", last or "", json.dumps(free, sort_keys=True), now, now))
                    continue
                report.merged += 1
                merged_fields = {**json.loads(old[3]), **free}
                changed = [k for k in ("first_name", "last_name") if {"first_name": first, "last_name": last}[k]]
                changed += sorted(free)
                report.issues.append(ImportRow(
                    line, "merged", number,
                    f"already a contact; updated {', '.join(changed)}" if changed else "already a contact; nothing new",
                ))
                updates.append((first or old[1], last or old[2], json.dumps(merged_fields, sort_keys=True), now, old[0]))
            if dry_run:
                return report
            if inserts:
                conn.exec_driver_sql(
                    "INSERT INTO contacts (number, first_name, last_name, fields_json, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", inserts,
                )
            if updates:
                conn.exec_driver_sql(
                    "UPDATE contacts SET first_name = ?, last_name = ?, fields_json = ?, updated_at = ? WHERE id = ?",
                    updates,
                )
            memberships: list[tuple[int, str, float]] = []
            group_ids: dict[str, int] = {}
            for _line, number, _f, _l, _free, names in parsed:
                for g in ([group] if group else []) + names:
                    if g not in group_ids:
                        group_ids[g] = self._group_id(conn, g)
                    memberships.append((group_ids[g], number, now))
            if memberships:
                conn.exec_driver_sql(
                    "INSERT OR IGNORE INTO group_members (group_id, contact_id, added_at) "
                    "SELECT ?, id, ? FROM contacts WHERE number = ?",
                    [(gid, at, number) for gid, number, at in memberships],
                )
        return report

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


def _fields(row: Sequence[Any]) -> dict[str, str]:
    number, first, last, fields_json = row[0], row[1], row[2], row[3]
    return {**json.loads(fields_json), "number": number, "first_name": first, "last_name": last,
            "name": f"{first} {last}".strip()}
