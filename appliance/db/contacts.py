"""Contacts, groups and static group members; group filters compiled to SQL.

A group's audience is a :class:`GroupSelector`: its id (static members) and the parsed
conditions of its filter (:func:`appliance.contacts.filters.parse_filter` reads the text;
this module compiles the conditions for the engine of the transaction). Filter values and
searches compare ignoring case on both engines; a search treats ``%``, ``_`` and ``\\``
literally.

Every write that may create a contact or change a contact's number takes
:func:`lock_numbers` first, so an import that reads which numbers exist and then inserts
the rest never meets a number another node inserted meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from appliance.db.engine import Tx
from appliance.db.errors import InvalidRequest
from appliance.db.rows import Page, as_datetime, decode_cursor, encode_cursor, placeholders

__all__ = [
    "ContactUpdate",
    "ContactView",
    "FilterCondition",
    "GroupRecord",
    "GroupSelector",
    "GroupView",
    "NewContact",
    "Recipient",
    "StoredContact",
    "add_member",
    "add_members_by_number",
    "add_memberships_by_number",
    "contact_id_of",
    "contacts_by_number",
    "count_contacts",
    "count_members",
    "count_static_members",
    "delete_contact",
    "delete_group",
    "ensure_group",
    "filter_sql",
    "find_group",
    "get_contact",
    "get_contact_by_number",
    "group_recipients",
    "group_view",
    "insert_contact",
    "insert_contacts",
    "insert_group",
    "list_contacts",
    "list_groups",
    "lock_numbers",
    "recipients_by_number",
    "remove_members_by_number",
    "replace_memberships",
    "update_contact",
    "update_contacts",
    "update_group",
]

_CHUNK = 900  # SQLite's default limit on host parameters is 999 (32766 on newer builds)
_CONTACT_COLS = "c.id, c.number, c.first_name, c.last_name, c.fields_json, c.created_at, c.updated_at"
_GROUP_COLS = "id, name, description, filter, created_at, updated_at"
_COLUMNS = {
    "number": "c.number",
    "first_name": "c.first_name",
    "last_name": "c.last_name",
    "name": "TRIM(c.first_name || ' ' || c.last_name)",
}


# ---------------------------------------------------------------------- records


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
class StoredContact:
    """A contact as an import merging into it sees it (no groups, times as stored)."""

    id: int
    number: str
    first_name: str
    last_name: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class NewContact:
    number: str
    first_name: str
    last_name: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """New values for an existing contact (every column is written)."""

    id: int
    first_name: str
    last_name: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: int
    name: str
    description: str
    filter: str | None
    created_at: float
    updated_at: float


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


class FilterCondition(Protocol):
    """One parsed condition of a group filter (:class:`appliance.contacts.filters.Condition`)."""

    @property
    def field(self) -> str: ...

    @property
    def op(self) -> str: ...  # "=" or "!="

    @property
    def value(self) -> str: ...


@dataclass(frozen=True, slots=True)
class GroupSelector:
    """Who is in a group: its static members plus every contact matching all of
    ``conditions`` (none: static members only)."""

    group_id: int
    conditions: tuple[FilterCondition, ...] = ()


def _dump(fields: Mapping[str, str]) -> str:
    return json.dumps(dict(fields), sort_keys=True)


def _stored(r: Any) -> StoredContact:
    return StoredContact(r["id"], r["number"], r["first_name"], r["last_name"], json.loads(r["fields_json"]))


def _group(r: Any) -> GroupRecord:
    return GroupRecord(r["id"], r["name"], r["description"], r["filter"], r["created_at"], r["updated_at"])


def _recipient(r: Any) -> Recipient:
    first, last = r["first_name"], r["last_name"]
    return Recipient(r["number"], {**json.loads(r["fields_json"]), "number": r["number"], "first_name": first,
                                   "last_name": last, "name": f"{first} {last}".strip()})


def _is_id(n: int) -> bool:
    """Whether ``n`` can be a row id (a larger number is no row: neither engine takes it)."""
    return 0 < n < 2**63


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


# ---------------------------------------------------------------------- filters and search


def filter_sql(tx: Tx, conditions: Sequence[FilterCondition]) -> tuple[str, list[str]]:
    """A SQL condition on ``contacts c`` matching every one of ``conditions`` (values as
    text, ignoring case; a missing field is empty) and its parameters."""
    sql: list[str] = []
    args: list[str] = []
    for cond in conditions:
        column = _COLUMNS.get(cond.field)
        if column is None:
            if tx.postgres:
                column = "(c.fields_json::jsonb ->> CAST(? AS TEXT))"
                args.append(cond.field)
            else:
                column = "CAST(json_extract(c.fields_json, ?) AS TEXT)"
                args.append(f'$."{cond.field}"')
        sql.append(f"lower(COALESCE({column}, '')) {'=' if cond.op == '=' else '<>'} lower(?)")
        args.append(cond.value)
    return " AND ".join(sql), args


def _selector_sql(tx: Tx, group: GroupSelector) -> tuple[str, list[Any]]:
    sql = "c.id IN (SELECT contact_id FROM group_members WHERE group_id = ?)"
    args: list[Any] = [group.group_id]
    if group.conditions:
        fsql, fargs = filter_sql(tx, group.conditions)
        sql = f"{sql} OR ({fsql})"
        args.extend(fargs)
    return sql, args


def _like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own characters escaped (``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# ---------------------------------------------------------------------- contacts


def lock_numbers(tx: Tx) -> None:
    """Hold the lock every writer takes before it creates contacts or changes a number."""
    tx.lock("contacts:numbers")


def _views(tx: Tx, rows: Sequence[Any]) -> list[ContactView]:
    groups: dict[int, list[str]] = {}
    for chunk in _chunks([r["id"] for r in rows]):
        for m in tx.exec_driver_sql(
            "SELECT m.contact_id, g.name FROM group_members m JOIN contact_groups g ON g.id = m.group_id "
            f"WHERE m.contact_id IN ({placeholders(len(chunk))})", tuple(chunk)
        ):
            groups.setdefault(m["contact_id"], []).append(m["name"])
    # Sorted here rather than by ORDER BY: the same (code point) order on both engines.
    return [
        ContactView(r["id"], r["number"], r["first_name"], r["last_name"], json.loads(r["fields_json"]),
                    tuple(sorted(groups.get(r["id"], ()))), as_datetime(r["created_at"]),  # type: ignore[arg-type]
                    as_datetime(r["updated_at"]))  # type: ignore[arg-type]
        for r in rows
    ]


def get_contact(tx: Tx, contact_id: int, *, for_update: bool = False) -> ContactView | None:
    """One contact; ``for_update`` locks its row until the transaction ends (PostgreSQL)."""
    if not _is_id(contact_id):
        return None
    lock = " FOR UPDATE" if for_update and tx.postgres else ""
    row = tx.exec_driver_sql(f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.id = ?{lock}", (contact_id,)).first()
    return None if row is None else _views(tx, [row])[0]


def get_contact_by_number(tx: Tx, number: str) -> ContactView | None:
    row = tx.exec_driver_sql(f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.number = ?", (number,)).first()
    return None if row is None else _views(tx, [row])[0]


def contact_id_of(tx: Tx, number: str) -> int | None:
    """The id of the contact with ``number``, if there is one."""
    cid = tx.exec_driver_sql("SELECT id FROM contacts WHERE number = ?", (number,)).scalar()
    return None if cid is None else int(cid)


def contacts_by_number(tx: Tx, numbers: Sequence[str]) -> dict[str, StoredContact]:
    """The contacts among ``numbers``, by number."""
    found: dict[str, StoredContact] = {}
    for chunk in _chunks(list(dict.fromkeys(numbers))):
        for r in tx.exec_driver_sql(
            "SELECT id, number, first_name, last_name, fields_json FROM contacts "
            f"WHERE number IN ({placeholders(len(chunk))})", tuple(chunk)
        ):
            found[r["number"]] = _stored(r)
    return found


def insert_contact(tx: Tx, contact: NewContact, now: float) -> int | None:
    """Add a contact; its id, or None when the number is a contact already."""
    cid = tx.exec_driver_sql(
        "INSERT INTO contacts (number, first_name, last_name, fields_json, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING RETURNING id",
        (contact.number, contact.first_name, contact.last_name, _dump(contact.fields), now, now),
    ).scalar()
    return None if cid is None else int(cid)


def insert_contacts(tx: Tx, contacts: Sequence[NewContact], now: float) -> None:
    """Add many contacts whose numbers are known to be new (under :func:`lock_numbers`)."""
    tx.insert_rows(
        "contacts", ("number", "first_name", "last_name", "fields_json", "created_at", "updated_at"),
        [(c.number, c.first_name, c.last_name, _dump(c.fields), now, now) for c in contacts],
    )


def update_contact(tx: Tx, contact_id: int, *, number: str, first_name: str, last_name: str,
                   fields: Mapping[str, str], now: float) -> bool:
    """Write every column of a contact; False if it does not exist. A number another
    contact has raises :class:`~appliance.db.errors.ConstraintViolation`."""
    return bool(tx.exec_driver_sql(
        "UPDATE contacts SET number = ?, first_name = ?, last_name = ?, fields_json = ?, updated_at = ? "
        "WHERE id = ?",
        (number, first_name, last_name, _dump(fields), now, contact_id),
    ).rowcount)


def update_contacts(tx: Tx, updates: Sequence[ContactUpdate], now: float) -> None:
    """Write names and fields of many contacts."""
    tx.exec_driver_sql(
        "UPDATE contacts SET first_name = ?, last_name = ?, fields_json = ?, updated_at = ? WHERE id = ?",
        [(u.first_name, u.last_name, _dump(u.fields), now, u.id) for u in updates],
    )


def delete_contact(tx: Tx, contact_id: int) -> bool:
    """Delete a contact (and its memberships); False if there was none."""
    if not _is_id(contact_id):
        return False
    return bool(tx.exec_driver_sql("DELETE FROM contacts WHERE id = ?", (contact_id,)).rowcount)


def count_contacts(tx: Tx) -> int:
    return int(tx.exec_driver_sql("SELECT COUNT(*) AS n FROM contacts").scalar_one())


def list_contacts(tx: Tx, *, limit: int, cursor: str | None, group: GroupSelector | None = None,
                  search: str | None = None) -> Page:
    """Contacts by id; in ``group`` and/or whose number or name contains ``search``
    (ignoring case, every character literal)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest(field="limit", detail="must be between 1 and 1000")
    after = decode_cursor("c", cursor)
    where, args = ["c.id > ?"], [int(after or 0)]
    if group is not None:
        gsql, gargs = _selector_sql(tx, group)
        where.append(f"({gsql})")
        args.extend(gargs)
    if search:
        where.append("(lower(c.number) LIKE lower(?) ESCAPE '\\' "
                     "OR lower(c.first_name || ' ' || c.last_name) LIKE lower(?) ESCAPE '\\')")
        args.extend([_like_pattern(search)] * 2)
    rows = tx.exec_driver_sql(
        f"SELECT {_CONTACT_COLS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.id LIMIT ?",
        (*args, limit + 1),
    ).all()
    items = _views(tx, rows[:limit])
    return Page(items, encode_cursor("c", items[-1].id) if len(rows) > limit else None)


# ---------------------------------------------------------------------- groups


def find_group(tx: Tx, ref: str | int) -> GroupRecord | None:
    """The group with id ``ref`` (an int or a string of digits) or else named ``ref``."""
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        gid = int(ref)
        if _is_id(gid):
            row = tx.exec_driver_sql(f"SELECT {_GROUP_COLS} FROM contact_groups WHERE id = ?", (gid,)).first()
            if row is not None:
                return _group(row)
    row = tx.exec_driver_sql(f"SELECT {_GROUP_COLS} FROM contact_groups WHERE name = ?", (str(ref),)).first()
    return None if row is None else _group(row)


def list_groups(tx: Tx) -> list[GroupRecord]:
    """Every group, by name (code point order on both engines)."""
    rows = tx.exec_driver_sql(f"SELECT {_GROUP_COLS} FROM contact_groups").all()
    return sorted((_group(r) for r in rows), key=lambda g: g.name)


def insert_group(tx: Tx, name: str, *, description: str, filter: str | None, now: float) -> int | None:
    """A new group's id, or None when the name is taken."""
    gid = tx.exec_driver_sql(
        "INSERT INTO contact_groups (name, description, filter, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, description, filter, now, now),
    ).scalar()
    return None if gid is None else int(gid)


def ensure_group(tx: Tx, name: str, now: float) -> int:
    """The id of the group named ``name``, made (static, no filter) if missing — also
    when another node makes it at the same moment."""
    gid = tx.exec_driver_sql("SELECT id FROM contact_groups WHERE name = ?", (name,)).scalar()
    if gid is not None:
        return int(gid)
    made = insert_group(tx, name, description="", filter=None, now=now)
    if made is not None:
        return made
    # Another transaction made it first; ON CONFLICT waited for its commit, so it shows now.
    return int(tx.exec_driver_sql("SELECT id FROM contact_groups WHERE name = ?", (name,)).scalar_one())


def update_group(tx: Tx, group_id: int, *, name: str, description: str, filter: str | None, now: float) -> bool:
    """Write every column of a group; False if it does not exist. A name another group
    has raises :class:`~appliance.db.errors.ConstraintViolation`."""
    return bool(tx.exec_driver_sql(
        "UPDATE contact_groups SET name = ?, description = ?, filter = ?, updated_at = ? WHERE id = ?",
        (name, description, filter, now, group_id),
    ).rowcount)


def delete_group(tx: Tx, group_id: int) -> bool:
    """Delete a group (its contacts stay); False if there was none."""
    return bool(tx.exec_driver_sql("DELETE FROM contact_groups WHERE id = ?", (group_id,)).rowcount)


def count_static_members(tx: Tx, group_id: int) -> int:
    return int(tx.exec_driver_sql(
        "SELECT COUNT(*) AS n FROM group_members WHERE group_id = ?", (group_id,)
    ).scalar_one())


def count_members(tx: Tx, group: GroupSelector) -> int:
    """How many contacts are in ``group`` (static or matching its filter)."""
    gsql, gargs = _selector_sql(tx, group)
    return int(tx.exec_driver_sql(f"SELECT COUNT(*) AS n FROM contacts c WHERE {gsql}", tuple(gargs)).scalar_one())


def group_view(tx: Tx, group: GroupRecord, conditions: Sequence[FilterCondition]) -> GroupView:
    """``group`` with its member counts (``conditions``: its parsed filter)."""
    static = count_static_members(tx, group.id)
    members = count_members(tx, GroupSelector(group.id, tuple(conditions))) if conditions else static
    return GroupView(group.id, group.name, group.description, group.filter, static, members,
                     as_datetime(group.created_at), as_datetime(group.updated_at))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- members


def add_member(tx: Tx, group_id: int, contact_id: int, now: float) -> bool:
    """Make a contact a static member; False if it was one already."""
    return bool(tx.exec_driver_sql(
        "INSERT INTO group_members (group_id, contact_id, added_at) VALUES (?, ?, ?) "
        "ON CONFLICT (group_id, contact_id) DO NOTHING",
        (group_id, contact_id, now),
    ).rowcount)


def replace_memberships(tx: Tx, contact_id: int, group_ids: Iterable[int], now: float) -> None:
    """Make ``group_ids`` the contact's static groups (and no others)."""
    tx.exec_driver_sql("DELETE FROM group_members WHERE contact_id = ?", (contact_id,))
    for gid in dict.fromkeys(group_ids):
        add_member(tx, gid, contact_id, now)


def add_members_by_number(tx: Tx, group_id: int, numbers: Sequence[str], now: float) -> tuple[int, list[str]]:
    """Add the contacts with ``numbers`` as static members: ``(added, numbers that are not
    contacts)``."""
    added, missing = 0, []
    for number in numbers:
        cid = contact_id_of(tx, number)
        if cid is None:
            missing.append(number)
        elif add_member(tx, group_id, cid, now):
            added += 1
    return added, missing


def add_memberships_by_number(tx: Tx, pairs: Sequence[tuple[int, str]], now: float) -> None:
    """Add each ``(group id, contact number)`` membership not there yet."""
    tx.exec_driver_sql(
        "INSERT INTO group_members (group_id, contact_id, added_at) "
        "SELECT ?, id, ? FROM contacts WHERE number = ? ON CONFLICT (group_id, contact_id) DO NOTHING",
        [(gid, now, number) for gid, number in pairs],
    )


def remove_members_by_number(tx: Tx, group_id: int, numbers: Sequence[str]) -> int:
    """Remove the contacts with ``numbers`` from the static members; how many were."""
    return sum(
        tx.exec_driver_sql(
            "DELETE FROM group_members WHERE group_id = ? AND contact_id = "
            "(SELECT id FROM contacts WHERE number = ?)", (group_id, number)
        ).rowcount
        for number in numbers
    )


# ---------------------------------------------------------------------- audiences


def group_recipients(tx: Tx, group: GroupSelector) -> list[Recipient]:
    """The members of ``group`` with their template fields, by contact id."""
    gsql, gargs = _selector_sql(tx, group)
    rows = tx.exec_driver_sql(
        f"SELECT c.number, c.first_name, c.last_name, c.fields_json FROM contacts c WHERE {gsql} ORDER BY c.id",
        tuple(gargs),
    ).all()
    return [_recipient(r) for r in rows]


def recipients_by_number(tx: Tx, numbers: Sequence[str]) -> dict[str, Recipient]:
    """The contacts among ``numbers`` with their template fields, by number."""
    found: dict[str, Recipient] = {}
    for chunk in _chunks(list(dict.fromkeys(numbers))):
        for r in tx.exec_driver_sql(
            "SELECT number, first_name, last_name, fields_json FROM contacts "
            f"WHERE number IN ({placeholders(len(chunk))})", tuple(chunk)
        ):
            found[r["number"]] = _recipient(r)
    return found
