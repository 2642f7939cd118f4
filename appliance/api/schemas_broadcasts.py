"""Request and response bodies of ``/v1/contacts``, ``/v1/groups`` and ``/v1/broadcasts``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from appliance.api.schemas import check_text
from appliance.broadcasts import BroadcastStats, BroadcastView, Preview
from appliance.contacts import ContactView, GroupView, ImportReport
from appliance.text import shorten

__all__ = [
    "AudienceIn",
    "BroadcastList",
    "BroadcastOut",
    "BroadcastRequest",
    "ContactIn",
    "ContactOut",
    "ContactPage",
    "ContactPatch",
    "GroupIn",
    "GroupList",
    "GroupOut",
    "GroupPatch",
    "HourOut",
    "ImportIssue",
    "ImportPathRequest",
    "ImportReportOut",
    "MembersRequest",
    "MembersResult",
    "PreviewOut",
    "SampleOut",
    "StartRequest",
    "StatsOut",
]

_MAX_AUDIENCE_NUMBERS = 100_000
FieldValue = str | int | float | bool | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- contacts

class ContactIn(_In):
    """A new contact. `name` alone is split into first and last name at the first space."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"number": "+14155550100", "first_name": "Ana", "last_name": "Diaz",
         "fields": {"class": "5B", "appointment": "Tue 10:30"}, "groups": ["parents"]},
    ]})

    number: str = Field(max_length=64, description="E.164 or national in the default region.")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=400)
    fields: dict[str, FieldValue] = Field(default_factory=dict, description="Free fields (text or numbers).")
    groups: list[str] = Field(default_factory=list, description="Static groups (made if missing).")


class ContactPatch(_In):
    """What to change. `fields` is merged (a `null` value removes that field); `groups`
    replaces the static memberships."""

    number: str | None = Field(default=None, max_length=64)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=400)
    fields: dict[str, FieldValue] | None = None
    groups: list[str] | None = None


class ContactOut(BaseModel):
    id: int
    number: str
    first_name: str
    last_name: str
    name: str
    fields: dict[str, str]
    groups: list[str] = Field(description="Static groups (filter groups are not listed).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: ContactView) -> ContactOut:
        return cls(id=c.id, number=c.number, first_name=c.first_name, last_name=c.last_name, name=c.name,
                   fields=c.fields, groups=list(c.groups), created_at=c.created_at, updated_at=c.updated_at)


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ImportPathRequest(_In):
    """Import a CSV file from the appliance's import directory (`[contacts] import_dir`;
    admin scope)."""

    path: str = Field(min_length=1, max_length=4096,
                      description="The file's name in the import directory (or its absolute path there).")
    map: dict[str, str] = Field(default_factory=dict, description="Column → field (`\"\"` skips the column).")
    group: str | None = Field(default=None, description="Add every imported contact to this group.")
    dry_run: bool = False


class ImportIssue(BaseModel):
    row: int = Field(description="Line in the file (the header is line 1).")
    status: Literal["invalid", "duplicate", "merged"]
    number: str | None
    detail: str


class ImportReportOut(BaseModel):
    """What the import did: every row is `created`, `merged`, `duplicate` or `invalid`;
    `issues` lists the rows that were not simply created."""

    rows: int
    created: int
    merged: int
    duplicates: int
    invalid: int
    group: str | None
    dry_run: bool
    columns: dict[str, str | None]
    issues: list[ImportIssue]

    @classmethod
    def of(cls, r: ImportReport) -> ImportReportOut:
        return cls(rows=r.rows, created=r.created, merged=r.merged, duplicates=r.duplicates, invalid=r.invalid,
                   group=r.group, dry_run=r.dry_run, columns=r.columns,
                   issues=[ImportIssue(row=i.row, status=i.status, number=i.number and shorten(i.number), detail=i.detail)  # type: ignore[arg-type]
                           for i in r.issues])


# ---------------------------------------------------------------------- groups

class GroupIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "5B parents", "filter": "class = \"5B\""},
    ]})

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    filter: str | None = Field(
        default=None, max_length=2000,
        description="Contacts whose fields match are members too: `field = value` or `field != value`, "
                    "joined with `and` (values compare as text, ignoring case).",
    )


class GroupPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    filter: str | None = Field(default=None, max_length=2000, description="`\"\"` removes the filter.")


class GroupOut(BaseModel):
    id: int
    name: str
    description: str
    filter: str | None
    static_members: int
    members: int = Field(description="Static members plus contacts the filter matches.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, g: GroupView) -> GroupOut:
        return cls(id=g.id, name=g.name, description=g.description, filter=g.filter, static_members=g.static_members,
                   members=g.members, created_at=g.created_at, updated_at=g.updated_at)


class GroupList(BaseModel):
    items: list[GroupOut]


class MembersRequest(_In):
    numbers: list[str] = Field(min_length=1, max_length=10_000, description="Numbers of existing contacts.")


class MembersResult(BaseModel):
    changed: int = Field(description="Memberships added (or removed).")
    not_contacts: list[str] = Field(default_factory=list, description="Numbers that are not contacts.")


# ---------------------------------------------------------------------- broadcasts

class AudienceIn(_In):
    groups: list[str] = Field(default_factory=list, description="Group names (or ids).")
    numbers: list[str] = Field(default_factory=list, max_length=_MAX_AUDIENCE_NUMBERS)
    csv: str | None = Field(default=None, description="CSV text: a number column plus fields for the template.")
    csv_map: dict[str, str] = Field(default_factory=dict, description="Column → field for `csv`.")


class BroadcastRequest(_In):
    """A broadcast: `template` to `audience`. The audience may have at most
    `[broadcasts] max_recipients` recipients (10,000 by default)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "closure", "template": "Dear {first_name|parent}, school is closed tomorrow.",
         "audience": {"groups": ["parents"]}, "kind": "transactional"},
        {"template": "Hi {first_name}, your appointment is {appointment}.",
         "audience": {"csv": "number,first_name,appointment\n+14155550100,Ana,Tue 10:30\n"},
         "kind": "transactional", "send_at": "2030-01-06T08:00:00+01:00"},
    ]})

    name: str = Field(default="", max_length=200)
    template: str = Field(min_length=1, max_length=10_000,
                          description="`{field}`, `{field|default}`; `{{`/`}}` for literal braces.")
    audience: AudienceIn
    kind: Literal["transactional", "marketing"] = Field(
        default="transactional",
        description="`marketing` waits out quiet hours and gets the opt-out footer.",
    )
    send_at: AwareDatetime | None = Field(default=None, description="Not before this time.")
    priority: Literal["high", "normal", "low"] = "low"
    validity_s: int | None = Field(default=None, gt=0, le=63 * 7 * 86400)
    allow_missing: bool = Field(default=False, description="Start even if some recipients lack a field "
                                                           "(it renders as nothing).")
    start: bool = Field(default=False, description="Start at once (POST /v1/broadcasts only).")

    _text = field_validator("template")(check_text)


class StartRequest(_In):
    allow_missing: bool | None = None


class SampleOut(BaseModel):
    to: str
    body: str
    parts: int
    encoding: str
    missing: list[str]


class PreviewOut(BaseModel):
    """What the broadcast would send, before anything is sent."""

    recipients: int = Field(description="Distinct valid numbers in the audience.")
    opted_out: int = Field(description="Of those, on the opt-out list (stored `suppressed`, never sent).")
    sendable: int = Field(description="Recipients after opt-outs.")
    invalid: int = Field(description="Numbers (or CSV rows) that are not valid phone numbers: left out.")
    invalid_examples: list[dict[str, Any]]
    duplicates: int
    parts: int = Field(description="SMS parts that will be sent (footer included).")
    encodings: dict[str, int] = Field(description="Messages per encoding (gsm7, ucs2).")
    max_parts: int = Field(description="The most parts one recipient's text needs.")
    parts_limit: int = Field(description="The appliance's max_parts per message.")
    too_long: int
    too_long_examples: list[str]
    missing: dict[str, int] = Field(description="Field → recipients who lack it (no default in the template).")
    missing_examples: list[dict[str, Any]]
    unknown_fields: list[str] = Field(description="Placeholders no recipient has.")
    footer: str | None
    samples: list[SampleOut]
    modems: int
    sticky: int = Field(default=0, description="Sendable recipients who wait for the SIM they know "
                                               "(sticky sender), counted in the estimate.")
    estimate_s: float | None = Field(description="Seconds from first to last send (null: no modem).")
    estimate: str = Field(description="E.g. `≈ 3 h 20 min with 2 modems`.")
    starts_at: datetime | None
    finishes_at: datetime | None
    quiet_hours: str | None = Field(description="The quiet-hours window (marketing only).")

    @classmethod
    def of(cls, p: Preview) -> PreviewOut:
        return cls(
            recipients=p.recipients, opted_out=p.opted_out, sendable=p.sendable, invalid=p.invalid,
            invalid_examples=p.invalid_examples, duplicates=p.duplicates, parts=p.parts, encodings=p.encodings,
            max_parts=p.max_parts, parts_limit=p.parts_limit, too_long=p.too_long,
            too_long_examples=p.too_long_examples, missing=p.missing, missing_examples=p.missing_examples,
            unknown_fields=p.unknown_fields, footer=p.footer,
            samples=[SampleOut(to=s.to, body=s.body, parts=s.parts, encoding=s.encoding, missing=list(s.missing))
                     for s in p.samples],
            modems=p.modems, sticky=p.sticky, estimate_s=None if p.estimate_s == float("inf") else round(p.estimate_s, 1),
            estimate=p.estimate, starts_at=p.starts_at, finishes_at=p.finishes_at, quiet_hours=p.quiet_hours,
        )


class HourOut(BaseModel):
    hour: datetime
    sent: int


class StatsOut(BaseModel):
    """Messages of the broadcast by status, and how far it got."""

    total: int
    queued: int
    sending: int
    sent: int
    delivered: int
    failed: int
    unknown: int
    cancelled: int
    suppressed: int
    expired: int
    done: int = Field(description="Messages no longer queued or sending.")
    parts_sent: int
    replies: int = Field(description="Inbound messages from the recipients since the broadcast started.")
    per_hour: list[HourOut] = Field(description="Messages sent per hour (UTC).")

    @classmethod
    def of(cls, s: BroadcastStats) -> StatsOut:
        b = s.by_status
        return cls(
            total=s.total, queued=b["queued"], sending=b["sending"], sent=b["sent"], delivered=b["delivered"],
            failed=b["failed"], unknown=b["unknown"], cancelled=b["cancelled"], suppressed=b["suppressed"],
            expired=b["expired"], done=s.done, parts_sent=s.parts_sent, replies=s.replies,
            per_hour=[HourOut(hour=h, sent=n) for h, n in s.per_hour],
        )


class BroadcastOut(BaseModel):
    id: int
    name: str
    status: Literal["draft", "awaiting_approval", "scheduled", "running", "paused", "done", "cancelled"]
    kind: str
    template: str
    audience: AudienceIn
    priority: str
    send_at: datetime | None
    validity_s: float | None
    allow_missing: bool
    footer: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    cancelled_at: datetime | None
    recipients: int = Field(description="Messages made at start (suppressed included).")
    parts: int = Field(description="Parts to send, as previewed at start.")
    waiting_for_quiet_hours: bool
    stats: StatsOut | None
    requested_by: str | None = Field(default=None, description="Who asked for a start that needed approval.")
    reviewed_by: str | None = Field(default=None, description="The admin who approved or rejected it.")

    @classmethod
    def of(cls, v: BroadcastView) -> BroadcastOut:
        a = v.audience
        return cls(
            id=v.id, name=v.name, status=v.status, kind=v.kind, template=v.template,  # type: ignore[arg-type]
            audience=AudienceIn(groups=list(a.groups), numbers=list(a.numbers), csv=a.csv, csv_map=dict(a.csv_map)),
            priority=v.priority, send_at=v.send_at, validity_s=v.validity_s, allow_missing=v.allow_missing,
            footer=v.footer, created_by=v.created_by, created_at=v.created_at, started_at=v.started_at,
            paused_at=v.paused_at, cancelled_at=v.cancelled_at, recipients=v.recipients, parts=v.parts,
            waiting_for_quiet_hours=v.waiting_for_quiet_hours, stats=StatsOut.of(v.stats) if v.stats else None,
            requested_by=v.requested_by, reviewed_by=v.reviewed_by,
        )


class BroadcastList(BaseModel):
    items: list[BroadcastOut]
