"""Request and response bodies of the REST API (pydantic models, shown in ``/docs``).

Limits: at most :data:`MAX_RECIPIENTS` recipients and :data:`MAX_BODY_CHARS` characters of
text per request (the configured ``max_parts`` usually bites first); a text must show
something (not only spaces or zero-width characters); ``metadata`` nests at most
:data:`MAX_METADATA_DEPTH` levels and takes at most :data:`MAX_METADATA_BYTES` as JSON.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from appliance.queue import BudgetView, InboundView, MessageView, OptOutView, PartView
from appliance.text import is_blank
from appliance.api.schemas_health import ModemHealthOut

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_RECIPIENTS",
    "BalanceOut",
    "Budget",
    "Health",
    "InboundMessage",
    "InboundPage",
    "MessageDetail",
    "MessagePage",
    "MessageSummary",
    "ModemCounters",
    "ModemIdentityOut",
    "ModemOut",
    "ModemsOut",
    "OptOutEntry",
    "OptOutPage",
    "OptOutRequest",
    "PartOut",
    "Queued",
    "RecipientError",
    "RegistrationOut",
    "SegmentsOut",
    "SegmentsRequest",
    "SendRequest",
    "SendResult",
    "SignalOut",
    "UssdOut",
    "UssdRequest",
    "check_metadata",
    "check_text",
]

MAX_RECIPIENTS = 10_000
MAX_BODY_CHARS = 10_000
MAX_METADATA_DEPTH = 8
MAX_METADATA_BYTES = 4096
_MAX_NUMBER_CHARS = 64


def check_text(value: str) -> str:
    """A message text that shows something on a phone (a validator)."""
    if value == "":
        raise ValueError("the message text is empty")
    if is_blank(value):
        raise ValueError("the message text shows nothing: it is only spaces, line breaks or invisible characters")
    return value


def _depth_over(value: Any, most: int) -> bool:
    """Whether objects and lists nest deeper than ``most`` levels in ``value`` (iterative:
    a hostile depth cannot exhaust the stack)."""
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > most:
            return True
        level.extend((child, depth + 1) for child in children)
    return False


def check_metadata(value: Any) -> Any:
    """``metadata`` as stored with a message: at most :data:`MAX_METADATA_DEPTH` levels of
    objects and lists, at most :data:`MAX_METADATA_BYTES` bytes of JSON (a validator that
    runs before the value is parsed further)."""
    if value is None:
        return value
    if _depth_over(value, MAX_METADATA_DEPTH):
        raise ValueError(f"metadata nests more than {MAX_METADATA_DEPTH} levels of objects and lists")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size:,} bytes as JSON; at most {MAX_METADATA_BYTES:,}")
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Recipients = Annotated[
    list[Annotated[str, Field(max_length=_MAX_NUMBER_CHARS)]],
    BeforeValidator(_one_or_many),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "maxLength": _MAX_NUMBER_CHARS},
            {"type": "array", "items": {"type": "string", "maxLength": _MAX_NUMBER_CHARS},
             "minItems": 1, "maxItems": MAX_RECIPIENTS},
        ],
        "description": "One number or a list; E.164 (`+14155550100`) or national in the "
                       "appliance's default region.",
    }),
]


# ---------------------------------------------------------------------- messages

class SendRequest(BaseModel):
    """A message to one or more recipients."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": "+14155550100", "body": "Your code is 123456"},
                {
                    "to": ["+14155550100", "(415) 555-0101"],
                    "body": "The clinic is closed on Monday.",
                    "send_at": "2030-01-06T08:00:00+01:00",
                    "priority": "low",
                    "validity_s": 86400,
                    "metadata": {"campaign": "closure"},
                },
            ]
        },
    )

    to: Recipients = Field(min_length=1, max_length=MAX_RECIPIENTS)
    body: str = Field(max_length=MAX_BODY_CHARS, description="The text; split into parts as needed.")
    send_at: AwareDatetime | None = Field(
        default=None, description="Not before this time (ISO 8601 with a timezone)."
    )
    priority: Literal["high", "normal", "low"] = "normal"
    validity_s: int | None = Field(
        default=None, gt=0, le=63 * 7 * 86400,
        description="Give up (status `expired`) if not sent within this many seconds of `send_at` "
                    "(or now); also the validity period asked of the network.",
    )
    metadata: dict[str, Any] | None = Field(
        default=None,
        description=f"Stored with each message and returned as given: at most {MAX_METADATA_DEPTH} levels "
                    f"of objects and lists, at most {MAX_METADATA_BYTES} bytes as JSON.",
    )

    _text = field_validator("body")(check_text)
    _metadata = field_validator("metadata", mode="before")(check_metadata)


class Queued(BaseModel):
    """One message created by a send request."""

    id: int
    to: str = Field(description="The recipient in E.164.")
    status: str = Field(description="`queued`, or `suppressed` if the number opted out.")
    parts: int = Field(description="How many SMS parts the text needs.")
    encoding: str = Field(description="`gsm7` or `ucs2`.")


class RecipientError(BaseModel):
    """A recipient that got no message, and why."""

    to: str = Field(description="The recipient as given.")
    detail: str


class SendResult(BaseModel):
    """The outcome per recipient: a message each, or an entry in `errors`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "messages": [
                    {"id": 41, "to": "+14155550100", "status": "queued", "parts": 1, "encoding": "gsm7"},
                    {"id": 42, "to": "+14155550101", "status": "suppressed", "parts": 1, "encoding": "gsm7"},
                ],
                "errors": [{"to": "12", "detail": "'12' is not a phone number: too short"}],
            }]
        }
    )

    messages: list[Queued]
    errors: list[RecipientError] = Field(
        description="Recipients that were refused (numbers that cannot be read); the others "
                    "are queued regardless."
    )


class PartOut(BaseModel):
    """One SMS part of a message, with its own state and TP-MR."""

    seq: int
    state: str
    modem: str | None
    mr: int | None = Field(description="TP-Message-Reference the network gave this part.")
    submitted_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    report_status: int | None = Field(description="Raw TP-Status of the last status report.")
    error: str | None

    @classmethod
    def of(cls, p: PartView) -> PartOut:
        return cls(
            seq=p.seq, state=p.state, modem=p.modem, mr=p.mr, submitted_at=p.submitted_at,
            sent_at=p.sent_at, delivered_at=p.delivered_at, report_status=p.report_status,
            error=p.error,
        )


class MessageSummary(BaseModel):
    """A message (one recipient)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "id": 41, "to": "+14155550100", "body": "Your code is 123456", "status": "sent",
                "priority": "normal", "encoding": "gsm7", "parts": 1, "modem": "sim-a",
                "attempts": 1, "resends": 0, "created_at": "2030-01-06T08:00:00Z",
                "updated_at": "2030-01-06T08:00:02Z", "send_at": None, "expires_at": None,
                "sent_at": "2030-01-06T08:00:02Z", "delivered_at": None, "error": None,
                "metadata": None, "redacted": False,
            }]
        }
    )

    id: int
    to: str
    body: str = Field(description="The text; empty once `redacted` (erased by retention or a privacy request).")
    status: Literal[
        "queued", "sending", "sent", "delivered", "failed", "unknown", "cancelled", "suppressed",
        "expired",
    ]
    priority: str
    encoding: str
    parts: int = Field(description="Number of SMS parts.")
    modem: str | None = Field(description="The modem it leaves (or left) through.")
    attempts: int
    resends: int
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None
    expires_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    error: str | None
    metadata: dict[str, Any] | None
    redacted: bool = Field(default=False, description="True when the body was erased (retention, a privacy request).")

    @staticmethod
    def fields_of(m: MessageView) -> dict[str, Any]:
        return {
            "id": m.id, "to": m.to, "body": m.body, "status": m.status, "priority": m.priority,
            "encoding": m.encoding, "parts": m.parts, "modem": m.modem, "attempts": m.attempts,
            "resends": m.resends, "created_at": m.created_at, "updated_at": m.updated_at,
            "send_at": m.send_at, "expires_at": m.expires_at, "sent_at": m.sent_at,
            "delivered_at": m.delivered_at, "error": m.error, "metadata": m.metadata,
            "redacted": m.redacted,
        }

    @classmethod
    def of(cls, m: MessageView) -> MessageSummary:
        return cls(**cls.fields_of(m))


class MessageDetail(MessageSummary):
    """A message with each of its parts (parts exist once it was first picked for sending)."""

    part_details: list[PartOut]

    @classmethod
    def of(cls, m: MessageView) -> MessageDetail:
        return cls(**cls.fields_of(m), part_details=[PartOut.of(p) for p in m.part_details])


class MessagePage(BaseModel):
    """Messages newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[MessageSummary]
    next_cursor: str | None


# ---------------------------------------------------------------------- inbound

class InboundMessage(BaseModel):
    """A received SMS, reassembled from its parts."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [{
                "id": 7, "from": "+14155550100", "to_modem": "sim-a", "body": "STOP",
                "received_at": "2030-01-06T08:05:00Z", "parts": 1, "complete": True,
                "keyword": "stop",
            }]
        },
    )

    id: int
    sender: str = Field(alias="from", description="The sender as the network gave it.")
    to_modem: str = Field(description="The modem that received it.")
    body: str
    received_at: datetime
    parts: int
    complete: bool = Field(description="False when parts were still missing after the reassembly timeout.")
    keyword: str | None = Field(description="`stop`, `start` or `help` when the text was one.")

    @classmethod
    def of(cls, v: InboundView) -> InboundMessage:
        return cls(
            id=v.id, sender=v.sender, to_modem=v.modem, body=v.body, received_at=v.received_at,
            parts=v.parts, complete=v.complete, keyword=v.keyword,
        )


class InboundPage(BaseModel):
    items: list[InboundMessage]
    next_cursor: str | None


# ---------------------------------------------------------------------- modems

class ModemIdentityOut(BaseModel):
    imei: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    firmware: str | None = None


class SignalOut(BaseModel):
    rssi: int = Field(description="0–31, 99 when unknown.")
    dbm: int | None
    bars: int = Field(description="0–5.")


class RegistrationOut(BaseModel):
    status: str = Field(description="home, roaming, searching, denied, not_registered or unknown.")
    technology: str | None = None
    lac: str | None = None
    cell_id: str | None = None


class ModemCounters(BaseModel):
    parts_sent_today: int = Field(description="Parts handed to the network since local midnight.")
    parts_sent_total: int


class Budget(BaseModel):
    """What the SIM may still send under its caps."""

    minute_left: int
    hour_left: int
    day_left: int
    next_allowed_at: datetime = Field(description="When the next part may go (now or earlier: at once).")
    month_left: int | None = Field(default=None, description="Parts left this calendar month "
                                   "(max_parts_per_month; null without that cap).")

    @classmethod
    def of(cls, b: BudgetView) -> Budget:
        from datetime import UTC

        return cls(
            minute_left=b.minute_left, hour_left=b.hour_left, day_left=b.day_left,
            next_allowed_at=datetime.fromtimestamp(b.next_allowed_at, UTC), month_left=b.month_left,
        )


class BalanceOut(BaseModel):
    """A prepaid balance read by USSD."""

    amount: float | None = Field(description="The number found in the answer (balance_pattern); null when none.")
    text: str = Field(description="The network's answer.")
    at: datetime
    low: bool | None = Field(description="Below the modem's balance_low (null: no threshold or no amount).")


class UssdRequest(BaseModel):
    """A USSD code to run through a modem."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "*100#"}]})

    code: str = Field(min_length=1, max_length=32, pattern=r"^[0-9*#+]+$",
                      description="Digits, *, # and + (e.g. *100#).")


class UssdOut(BaseModel):
    """The network's answer to a USSD code."""

    modem: str
    code: str
    text: str
    status: int = Field(description="0 the network answered; otherwise the +CUSD <m> it ended the "
                                    "session with (2: released, with this text).")


class ModemOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "name": "sim-a", "state": "online", "online": True, "port": "/dev/ttyUSB2",
                "identity": {"imei": "866262040000001", "iccid": "8944500000000000001",
                             "imsi": "234150000000001", "model": "SIM800L",
                             "manufacturer": "SIMCOM_Ltd", "firmware": "1418B05SIM800L24"},
                "signal": {"rssi": 20, "dbm": -73, "bars": 4},
                "registration": {"status": "home", "technology": "GSM", "lac": "1A2B", "cell_id": "00C3"},
                "operator": "Vodafone UK", "last_error": None,
                "counters": {"parts_sent_today": 12, "parts_sent_total": 3456},
                "budget": {"minute_left": 5, "hour_left": 188, "day_left": 988,
                           "next_allowed_at": "2030-01-06T08:00:04Z"},
            }]
        }
    )

    name: str
    state: str = Field(description="starting, online, offline, resetting or error.")
    online: bool
    port: str | None
    identity: ModemIdentityOut | None
    signal: SignalOut | None
    registration: RegistrationOut | None
    operator: str | None
    last_error: str | None
    counters: ModemCounters
    budget: Budget | None = Field(description="Null when the dispatcher does not drive this modem.")
    node: str | None = Field(default=None, description="The node that drives it (several appliances).")
    balance: BalanceOut | None = Field(default=None, description="The SIM's last prepaid balance read "
                                       "(modems with balance_ussd).")
    health: ModemHealthOut | None = Field(default=None, description="SIM health: paused or not, why, "
                                          "next probe ([health.sim]).")


class NodeOut(BaseModel):
    """An appliance sharing the database (one node alone on SQLite)."""

    name: str
    host: str
    state: str = Field(description="alive, silent (heard from longer ago than its lease) or stopped.")
    heartbeat_age_s: float = Field(description="Seconds since its last heartbeat (the database's clock).")
    lease_s: float
    version: str
    api_url: str | None
    this: bool = Field(description="True for the node that answered this request.")
    recovered_by: str | None = Field(
        description="The node that took over its in-flight work after it went silent, if one did."
    )


class ModemsOut(BaseModel):
    modems: list[ModemOut]
    nodes: list[NodeOut] = []


# ---------------------------------------------------------------------- opt-outs

class OptOutEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"number": "+14155550100", "created_at": "2030-01-06T08:05:00Z",
                          "source": "sms:sim-a"}]
        }
    )

    number: str = Field(description="E.164.")
    created_at: datetime
    source: str = Field(description="Who opted it out: `sms:<modem>` for a STOP, `api:<key name>`, ...")

    @classmethod
    def of(cls, v: OptOutView) -> OptOutEntry:
        return cls(number=v.number, created_at=v.created_at, source=v.source)


class OptOutPage(BaseModel):
    items: list[OptOutEntry]
    next_cursor: str | None


class OptOutRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"number": "+14155550100", "note": "asked by phone"}]},
    )

    number: str = Field(max_length=_MAX_NUMBER_CHARS)
    note: str | None = Field(default=None, max_length=1000, description="Kept in the consent log.")


# ---------------------------------------------------------------------- segments

class SegmentsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"body": "Hello “world”"}]})

    body: str = Field(max_length=MAX_BODY_CHARS)
    national_languages: list[str] | None = Field(
        default=None, max_length=13,
        description="National languages (3GPP TS 23.038: `turkish` … `urdu`) whose shift tables "
                    "may be used when they save parts; default: the appliance's "
                    "`[sms] national_languages`.",
    )


class Replacement(BaseModel):
    original: str
    replacement: str


class SegmentsOut(BaseModel):
    """How a text would be sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{
                "encoding": "gsm7", "shift_table": None, "locking_shift": None,
                "single_shift": None, "parts": 1, "default_parts": 1, "summary": "GSM-7: 1 part",
                "chars_left": 147, "unit_limit": 160, "units_per_part": [13],
                "replacements": [{"original": "“", "replacement": '"'},
                                 {"original": "”", "replacement": '"'}],
                "texts": ['Hello "world"'],
            }]
        }
    )

    encoding: str = Field(description="`gsm7` or `ucs2`.")
    shift_table: str | None = Field(description="National shift table used, if any.")
    locking_shift: str | None = Field(
        default=None, description="National locking-shift table used (UDH IE 0x25), if any.")
    single_shift: str | None = Field(
        default=None, description="National single-shift table used (UDH IE 0x24), if any.")
    parts: int
    default_parts: int = Field(
        description="Parts without national tables (default alphabet or UCS-2); equals `parts` "
                    "when none is used.")
    summary: str = Field(description='E.g. "GSM-7, Hindi tables: 2 parts instead of 4".')
    chars_left: int = Field(description="Units (septets or UTF-16 units) still free in the last part.")
    unit_limit: int = Field(description="Units per part at this size.")
    units_per_part: list[int]
    replacements: list[Replacement] = Field(description="Look-alikes replaced to stay in GSM-7.")
    texts: list[str] = Field(description="The text of each part as sent.")


# ---------------------------------------------------------------------- health

class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "degraded", "reasons": ["no modem is online"],
                          "modems_online": 0, "modems_total": 2, "queue_depth": 17,
                          "uptime_s": 3600.5}]
        }
    )

    status: Literal["ok", "degraded"]
    reasons: list[str]
    modems_online: int
    modems_total: int
    queue_depth: int | None = Field(description="Messages queued; null when the database failed.")
    uptime_s: float
    info: list[str] = Field(default=[], description="Facts worth knowing that are not faults, "
                            "e.g. messages recovered as `unknown` after a power cut.")
    recovered_unknown: int = Field(default=0, description="Messages found mid-send at start-up, now `unknown`.")
    disk_free_mb: float | None = Field(default=None, description="Free space where the database lives.")
