"""SQLModel tables of the queue (the schema alembic's migrations build).

Times are stored as UNIX seconds (``REAL``, UTC) so the claim and the rate windows compare
plain numbers. ``messages.modem`` is the modem a message leaves through: it is set at claim
and stays set ("pinned") once any part has left, because all parts of one message must go
through the same modem.
"""

from __future__ import annotations

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from appliance.db.types import FLAG, where

__all__ = [
    "ApiKeyRecord",
    "AuditEvent",
    "Batch",
    "Broadcast",
    "Contact",
    "ContactGroup",
    "EmailOutgoing",
    "EmailRefusal",
    "EmailSeen",
    "EmailThread",
    "GroupMember",
    "Cursor",
    "InboundFragment",
    "InboundPdu",
    "ConsentLogEntry",
    "Event",
    "InboundMessage",
    "Message",
    "ModemHealthRecord",
    "ModemRecord",
    "Node",
    "OptOut",
    "Part",
    "SendLogEntry",
    "SignalSample",
    "TwilioCredential",
    "TwilioMessage",
    "User",
    "WebSession",
    "WebhookDelivery",
    "metadata",
]

metadata = SQLModel.metadata


class Batch(SQLModel, table=True):
    """One enqueue call; carries the idempotency key that makes a repeat return it."""

    __tablename__ = "batches"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str | None = Field(default=None, unique=True)
    fingerprint: str
    created_at: float
    count: int


class Message(SQLModel, table=True):
    """One SMS to one recipient (possibly several parts)."""

    __tablename__ = "messages"
    __table_args__ = (
        # The claim: next queued message by priority, then due time, then age. Held
        # messages (a paused broadcast's) are left out of both indexes, so a paused
        # 100,000-recipient broadcast costs the claim nothing.
        Index(
            "ix_messages_claim", "priority", "due_at", "id",
            **where("status = 'queued' AND held = 0"),
        ),
        Index("ix_messages_queued_due", "due_at", **where("status = 'queued' AND held = 0")),
        # The claim inside quiet hours: without it, the claim would walk past every waiting
        # marketing message (55 ms with 100,000 of them) each time a worker looks for work.
        Index(
            "ix_messages_claim_tx", "priority", "due_at", "id",
            **where("status = 'queued' AND held = 0 AND kind != 'marketing'"),
        ),
        Index(
            "ix_messages_queued_expiry", "expires_at",
            **where("status = 'queued' AND expires_at IS NOT NULL"),
        ),
        Index("ix_messages_status_id", "status", "id"),
        # "Today" on the dashboard: messages that changed since midnight, without a scan.
        Index("ix_messages_updated", "updated_at"),
        Index("ix_messages_recipient_id", "recipient", "id"),
        # Covering for a broadcast's progress (counts by status, parts sent, per hour),
        # which an open broadcast page asks for every second.
        Index(
            "ix_messages_broadcast", "broadcast_id", "status", "parts", "sent_at",
            **where("broadcast_id IS NOT NULL"),
        ),
        # A SIM's own sticky work first (docs/architecture.md, "Sticky sender"): only
        # queued messages that prefer a SIM are in it.
        Index(
            "ix_messages_sticky", "sticky_sim", "priority", "due_at", "id",
            **where("status = 'queued' AND held = 0 AND sticky_sim IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batches.id", index=True)
    recipient: str
    body: str
    encoding: str
    parts: int
    priority: int  # 0 high, 1 normal, 2 low
    status: str
    created_at: float
    updated_at: float
    send_at: float | None = None
    due_at: float  # when it may next be claimed: send_at, or a retry's backoff
    expires_at: float | None = None
    attempts: int = 0
    max_attempts: int
    resends: int = 0
    modem: str | None = None
    claimed_at: float | None = None
    concat_ref: int | None = None
    sent_at: float | None = None
    delivered_at: float | None = None
    error: str | None = None
    metadata_json: str | None = None
    # A reply to a STOP must reach a number that has just opted out; nothing else may.
    ignore_opt_out: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    # The broadcast the message belongs to (None for a message sent on its own).
    broadcast_id: int | None = None
    # "transactional" or "marketing": marketing waits out the quiet hours.
    kind: str = Field(default="transactional", sa_column_kwargs={"server_default": text("'transactional'")})
    # Held (a paused broadcast): still "queued" to the API, but never claimed.
    held: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    # The national shift tables it was planned with (appliance.pdu.ShiftTables.key), so the
    # parts sent are the parts counted even if the settings change meanwhile.
    shift_tables: str | None = None
    # When the body was erased (retention or a privacy request); the row itself stays.
    redacted_at: float | None = None
    # Sticky sender: the SIM (ICCID, or modem name) that last texted the recipient or that
    # the recipient last wrote to, found at enqueue; the message waits for it while it can
    # send (docs/architecture.md, "Sticky sender"). None: any modem, round-robin.
    sticky_sim: str | None = None


class Part(SQLModel, table=True):
    """One SMS-SUBMIT of a message, with its own state and TP-MR."""

    __tablename__ = "parts"
    __table_args__ = (
        UniqueConstraint("message_id", "seq", name="uq_parts_message_seq"),
        Index("ix_parts_report_match", "modem", "mr", "sent_at"),
        Index("ix_parts_submitting", "message_id", **where("state = 'submitting'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id")
    seq: int  # 1-based
    state: str  # queued, submitting, sent, delivered, failed, unknown, cancelled
    modem: str | None = None
    mr: int | None = None
    submitted_at: float | None = None
    sent_at: float | None = None
    delivered_at: float | None = None
    report_status: int | None = None  # raw TP-ST of the last status report
    error: str | None = None


class ModemRecord(SQLModel, table=True):
    """What the queue knows about a modem: identity, last state, concatenation counter."""

    __tablename__ = "modems"

    name: str = Field(primary_key=True)
    imei: str | None = None
    iccid: str | None = None
    model: str | None = None
    state: str | None = None
    updated_at: float
    next_concat_ref: int = 0
    node: str | None = None  # the node whose worker drives it


class SendLogEntry(SQLModel, table=True):
    """One part handed to a modem: the durable record the rate windows are counted from."""

    __tablename__ = "send_log"
    __table_args__ = (
        Index("ix_send_log_modem_at", "modem", "at"),
        Index("ix_send_log_sim_at", "sim", "at"),
        Index("ix_send_log_message", "message_id"),  # a number's last SIM (sticky sender)
    )

    id: int | None = Field(default=None, primary_key=True)
    modem: str
    sim: str | None = None  # the SIM's ICCID (its modem's name when unknown): caps follow the SIM
    at: float
    message_id: int | None = None
    part_id: int | None = None


class InboundMessage(SQLModel, table=True):
    """A received SMS (already reassembled by the inbound handler when it had parts).

    ``digest`` identifies the PDU(s) it came from, so the same stored PDU read twice is one
    message; ``complete`` is False when the reassembly timeout passed with parts missing;
    ``keyword`` is stop/start/help when the text was one; ``handled_at`` is set once its
    keyword actions and webhook events have been recorded.
    """

    __tablename__ = "inbound"
    __table_args__ = (
        Index("ix_inbound_received", "received_at"),
        Index("ix_inbound_digest", "digest", unique=True),
        Index("ix_inbound_unhandled", "id", **where("handled_at IS NULL")),
        Index("ix_inbound_sender", "sender", "received_at"),  # a number's last SIM (sticky sender)
    )

    id: int | None = Field(default=None, primary_key=True)
    modem: str
    sender: str
    body: str
    received_at: float
    parts: int = 1
    pdu_hex: str | None = None
    metadata_json: str | None = None
    digest: str | None = None
    complete: bool = Field(default=True, sa_type=FLAG, sa_column_kwargs={"server_default": text("1")})
    keyword: str | None = None
    handled_at: float | None = None
    redacted_at: float | None = None  # when the body was erased (retention or a privacy request)
    sim: str | None = None  # the SIM (ICCID, or modem name) it reached, noted when stored


class InboundFragment(SQLModel, table=True):
    """One part of a multipart SMS waiting for its siblings (keyed by sender, ref, total)."""

    __tablename__ = "inbound_fragments"
    __table_args__ = (
        Index("ix_inbound_fragments_digest", "digest", unique=True),
        Index("ix_inbound_fragments_group", "sender", "ref", "total", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    modem: str
    sender: str
    ref: int
    total: int
    seq: int
    body: str
    pdu_hex: str
    digest: str
    received_at: float


class InboundPdu(SQLModel, table=True):
    """A PDU consumed into a stored multipart message (so a re-read of it is ignored)."""

    __tablename__ = "inbound_pdus"
    __table_args__ = (Index("ix_inbound_pdus_received", "received_at"),)

    digest: str = Field(primary_key=True)
    inbound_id: int
    received_at: float


class OptOut(SQLModel, table=True):
    """A number that must not be sent to (E.164)."""

    __tablename__ = "opt_outs"

    number: str = Field(primary_key=True)
    created_at: float
    source: str


class ConsentLogEntry(SQLModel, table=True):
    """Every consent change (opt-out or opt-in), with time and source."""

    __tablename__ = "consent_log"
    __table_args__ = (Index("ix_consent_log_number", "number", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str
    action: str  # "opt_out" or "opt_in"
    source: str
    at: float
    note: str | None = None


class Event(SQLModel, table=True):
    """Audit trail: state changes of messages and operator actions."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_message", "message_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: float
    kind: str
    message_id: int | None = None
    part_id: int | None = None
    modem: str | None = None
    detail: str | None = None



class ApiKeyRecord(SQLModel, table=True):
    """An API key: only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True)
    name: str
    digest: str
    scopes: str  # comma-separated: send, read, admin
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class WebhookDelivery(SQLModel, table=True):
    """The webhook outbox: one row per (event, receiver), kept until delivered."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
        Index("ix_webhook_outbox_due", "next_attempt_at", **where("delivered_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    url: str
    event: str  # "inbound" or "status"
    payload: str  # the JSON body, exactly as signed and sent
    created_at: float
    attempts: int = 0
    next_attempt_at: float
    delivered_at: float | None = None
    last_error: str | None = None
    leased_by: str | None = None  # the node delivering it now (until next_attempt_at)


class Cursor(SQLModel, table=True):
    """A named position in a table (e.g. the last event turned into webhook deliveries)."""

    __tablename__ = "cursors"

    name: str = Field(primary_key=True)
    value: int = 0


class Contact(SQLModel, table=True):
    """A person the appliance can text: E.164 number (unique), name and free fields (JSON)."""

    __tablename__ = "contacts"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True)
    first_name: str = Field(default="", sa_column_kwargs={"server_default": text("''")})
    last_name: str = Field(default="", sa_column_kwargs={"server_default": text("''")})
    fields_json: str = Field(default="{}", sa_column_kwargs={"server_default": text("'{}'")})
    created_at: float
    updated_at: float


class ContactGroup(SQLModel, table=True):
    """A named audience: static members plus, optionally, every contact a filter matches."""

    __tablename__ = "contact_groups"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = Field(default="", sa_column_kwargs={"server_default": text("''")})
    filter: str | None = None  # e.g. class = "5B" and school = "North"
    created_at: float
    updated_at: float


class GroupMember(SQLModel, table=True):
    """A static member of a group."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_contact", "contact_id"),)

    group_id: int = Field(foreign_key="contact_groups.id", primary_key=True, ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE")
    added_at: float


class Broadcast(SQLModel, table=True):
    """One mass text: a template, an audience, a kind and its life cycle.

    ``status`` as stored: ``draft`` (→ ``awaiting_approval``) → ``running`` ⇄ ``paused``,
    or ``cancelled``; the API
    shows ``scheduled`` (running, ``send_at`` ahead) and ``done`` (running, nothing left to
    send) derived from its messages.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    template: str
    kind: str  # transactional / marketing
    status: str
    audience_json: str
    priority: int = 1
    send_at: float | None = None
    validity_s: float | None = None
    allow_missing: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    footer: str | None = None  # the opt-out footer appended (marketing), fixed at start
    created_by: str | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    paused_at: float | None = None
    cancelled_at: float | None = None
    batch_id: int | None = None
    recipients: int = 0  # messages made at start (suppressed included)
    parts: int = 0  # parts of the messages that will be sent (suppressed excluded)
    # Approval of big sends: who asked for the start (status awaiting_approval), who
    # approved or rejected it (docs/architecture.md, "Audit trail and approval").
    requested_by: str | None = None
    requested_at: float | None = None
    reviewed_by: str | None = None
    reviewed_at: float | None = None


class Node(SQLModel, table=True):
    """An appliance sharing the database: its heartbeat and whether a survivor recovered
    its in-flight work after its lease ran out."""

    __tablename__ = "nodes"

    name: str = Field(primary_key=True)
    host: str
    pid: int
    version: str
    api_url: str | None = None
    lease_s: float
    started_at: float
    heartbeat_at: float
    stopped_at: float | None = None
    recovered_at: float | None = None
    recovered_by: str | None = None


class User(SQLModel, table=True):
    """A person who signs in to the web pages (``appliance users create``).

    ``password_hash`` is an scrypt hash with its parameters and salt
    (``scrypt$n$r$p$salt$hash``); ``role`` is ``staff`` or ``admin``.
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True)
    password_hash: str
    role: str
    created_at: float
    password_changed_at: float
    disabled_at: float | None = None
    last_login_at: float | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser: only the SHA-256 of the cookie's token is stored; ``csrf`` is the
    token every form of this session must carry."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user", "user_id"),)

    id: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    csrf: str
    created_at: float
    last_seen_at: float
    expires_at: float


class EmailThread(SQLModel, table=True):
    """Email to SMS: the last mail sent to a number, so the number's SMS replies go back to
    its sender threaded under it (``In-Reply-To``)."""

    __tablename__ = "email_threads"

    number: str = Field(primary_key=True)
    sender: str
    message_id: str
    subject: str = ""
    updated_at: float


class EmailSeen(SQLModel, table=True):
    """A mail already acted on (its ``Message-ID`` and target): a re-delivery does nothing."""

    __tablename__ = "email_seen"

    key: str = Field(primary_key=True)
    at: float


class EmailRefusal(SQLModel, table=True):
    """A mail (or a step of one: AUTH, MAIL, RCPT, DATA) the SMTP side refused, and why."""

    __tablename__ = "email_refusals"
    __table_args__ = (Index("ix_email_refusals_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: float
    peer: str
    mail_from: str = ""
    rcpt: str = ""
    code: int
    reason: str


class EmailOutgoing(SQLModel, table=True):
    """A mail to send through the relay (answers to senders, inbound copies): kept until
    sent, leased by one node at a time (``leased_by`` until ``next_attempt_at``)."""

    __tablename__ = "email_outbox"
    __table_args__ = (Index("ix_email_outbox_due", "next_attempt_at", **where("sent_at IS NULL")),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # what the mail is about, once: e.g. inbound:<id>:<address>
    mail_to: str
    subject: str
    body: str
    in_reply_to: str | None = None
    created_at: float
    attempts: int = 0
    next_attempt_at: float
    sent_at: float | None = None
    last_error: str | None = None
    leased_by: str | None = None


class TwilioCredential(SQLModel, table=True):
    """A Twilio-compatible credential tied to an API key (its scopes, its revocation).

    ``auth_token`` is kept as issued: Twilio signs callbacks with the Auth Token itself
    (``X-Twilio-Signature``), so it cannot be reduced to a hash. Requests are checked
    against ``token_digest`` (and ``api_key_digest`` for the ``SK…`` form)."""

    __tablename__ = "twilio_credentials"

    account_sid: str = Field(primary_key=True)  # AC + 32 hex
    key_id: str = Field(index=True)  # api_keys.id
    auth_token: str
    token_digest: str
    api_key_sid: str = Field(unique=True)  # SK + 32 hex
    api_key_digest: str
    created_at: float


class TwilioMessage(SQLModel, table=True):
    """A message sent through the Twilio-compatible API: its SID and callback."""

    __tablename__ = "twilio_messages"
    __table_args__ = (Index("ix_twilio_messages_account", "account_sid", "message_id"),)

    message_id: int = Field(primary_key=True)  # messages.id
    sid: str = Field(unique=True)  # SM + 32 hex
    account_sid: str
    status_callback: str | None = None
    deleted: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    created_at: float


class ModemBalance(SQLModel, table=True):
    """A prepaid balance read by USSD: the amount found in the answer (None when none
    was), the answer itself, and when."""

    __tablename__ = "modem_balances"
    __table_args__ = (Index("ix_modem_balances_modem", "modem", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    modem: str
    iccid: str | None = None
    amount: float | None = None
    text: str
    at: float


class AuditEvent(SQLModel, table=True):
    """One change made by a person, an API key or the command line: who (``actor_kind``
    user / key / cli / system and ``actor``), from where, what (``action``, a dotted verb),
    on what (``target``) and a small JSON ``detail`` (never a message body; numbers masked).
    ``at`` is the database's clock."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor", "actor", "id"),
        Index("ix_audit_events_action", "action", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: float
    actor_kind: str
    actor: str
    address: str | None = None
    action: str
    target: str | None = None
    detail_json: str | None = None


class SignalSample(SQLModel, table=True):
    """One modem's signal at one moment (sampled by its own node every few minutes, from
    the worker's last reading; pruned after a week). ``dbm``/``bars`` are None when the
    modem reported no signal (CSQ 99) or was offline."""

    __tablename__ = "signal_samples"
    __table_args__ = (Index("ix_signal_samples_modem_at", "modem", "at"), Index("ix_signal_samples_at", "at"))

    id: int | None = Field(default=None, primary_key=True)
    modem: str
    node: str | None = None
    at: float
    rssi: int | None = None
    dbm: int | None = None
    bars: int | None = None


class ModemHealthRecord(SQLModel, table=True):
    """SIM health (``[health.sim]``): a modem paused by its health check or an admin, why
    (``reason``, the ``+CMS ERROR`` ``code``), since when, when its next probe is due
    (``probe_at``; None: only an admin resumes it), how many pauses in a row (``strikes``:
    the cool-down doubles with each) and whether its first send after a probe decides
    (``probation``)."""

    __tablename__ = "modem_health"

    modem: str = Field(primary_key=True)
    paused: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    reason: str | None = None
    code: int | None = None
    paused_by: str | None = None
    paused_at: float | None = None
    probe_at: float | None = None
    strikes: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    probation: bool = Field(default=False, sa_type=FLAG, sa_column_kwargs={"server_default": text("0")})
    resumed_by: str | None = None
    resumed_at: float | None = None
    updated_at: float
