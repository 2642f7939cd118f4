"""Broadcasts: one template sent to many, previewed first, started, paused, resumed,
cancelled, and followed until done.

Life cycle (stored ``status``): ``draft`` → ``running`` ⇄ ``paused``, or ``cancelled``;
a start asked by someone who needs approval (``approval_over`` recipients or more, see
:meth:`BroadcastService.start`) goes ``draft`` → ``awaiting_approval`` → ``running``
(approved by another admin) or ``cancelled`` (rejected).
The API also shows ``scheduled`` (running, ``send_at`` still ahead) and ``done`` (running
or paused with nothing left to send). :meth:`BroadcastService.start` renders every
recipient's text and queues it in one transaction (:meth:`Queue.enqueue_many`); from
then on the messages are ordinary queue messages tagged with the broadcast, its ``kind``
and, while paused, ``held`` (they stay ``queued`` to the API and are not claimed).

Decisions:

- The audience is resolved at preview and again at start (a contact added in between is
  included); each number once (first occurrence wins); CSV rows with invalid numbers are
  counted ``invalid`` and left out.
- Opted-out recipients are counted in the preview (``opted_out``) and stored as
  ``suppressed`` messages at start, so preview and stats agree: ``sendable`` in the
  preview is ``total − suppressed`` in the stats. Parts and encodings count sendable
  recipients only.
- A placeholder with no default that a recipient lacks (absent or empty) is *missing*;
  the preview reports each such field with a count and examples, and start is refused
  unless ``allow_missing`` (then it renders as nothing). A field no recipient has is
  listed in ``unknown_fields``.
- Marketing texts get the configured opt-out footer appended on a new line, counted in
  the parts; they wait out quiet hours in the queue.
- Broadcast messages go at priority ``low`` unless asked otherwise, so one-off messages
  sent meanwhile are not stuck behind a 10,000-recipient broadcast.
"""

from __future__ import annotations

import json

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from appliance.audit import Action, Actor
from appliance.audit import write as audit_write
from appliance.broadcasts.estimate import finish_time, humanize, sticky_duration
from appliance.broadcasts.templates import Template
from appliance.contacts import ContactBook, Recipient, read_csv
from appliance.numbers import InvalidNumber, to_e164
from appliance.pdu import PduError, plan
from appliance.db import broadcasts as broadcasts_db
from appliance.db import consent
from appliance.db.broadcasts import BroadcastRecord, BroadcastStats
from appliance.db.engine import Tx, read_tx, write_tx
from appliance.db.rows import as_datetime
from appliance.db.states import PRIORITIES, PRIORITY_NAMES
from appliance.errors import ApplianceError
from appliance.queue import InvalidRequest, InvalidState, Queue, RateLimits
from appliance.queue.quiet import QuietHours

__all__ = [
    "KINDS",
    "ApprovalRefused",
    "approval_limit",
    "Audience",
    "BroadcastService",
    "BroadcastSpec",
    "BroadcastStats",
    "BroadcastView",
    "Preview",
    "Sample",
]

KINDS = ("transactional", "marketing")


class ApprovalRefused(ApplianceError):
    """``actor`` may not approve or reject broadcast ``broadcast_id``: they asked for it
    (someone else must decide)."""

    def __init__(self, broadcast_id: int, actor: str) -> None:
        super().__init__(f"broadcast {broadcast_id} was asked for by {actor}: another admin must approve or "
                         "reject it (nobody approves their own)")
        self.broadcast_id = broadcast_id
        self.actor = actor


def approval_limit(approval_over: int, *, admin: bool) -> int | None:
    """The ``approval_over`` a start by someone passes to :meth:`BroadcastService.start`:
    None (no approval needed) for an admin or when the setting is 0."""
    return None if admin or approval_over <= 0 else approval_over


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a broadcast goes to: contacts in ``groups``, ``numbers`` (any format; their
    contact fields if they are contacts), and/or the rows of ``csv`` (a ``number`` column
    plus any columns the template uses; ``csv_map`` renames columns as in an import)."""

    groups: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    csv: str | None = None
    csv_map: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        return json.dumps({"groups": list(self.groups), "numbers": list(self.numbers), "csv": self.csv,
                           "csv_map": dict(self.csv_map)})

    @classmethod
    def from_json(cls, text: str) -> Audience:
        d = json.loads(text)
        return cls(tuple(d.get("groups") or ()), tuple(d.get("numbers") or ()), d.get("csv"),
                   tuple((d.get("csv_map") or {}).items()))

    @property
    def empty(self) -> bool:
        return not (self.groups or self.numbers or self.csv)


@dataclass(frozen=True, slots=True)
class BroadcastSpec:
    """What to send: ``template`` to ``audience``, of ``kind``, from ``send_at`` (UNIX
    seconds, None = now), at ``priority``, valid ``validity_s`` seconds."""

    template: str
    audience: Audience
    kind: str = "transactional"
    name: str = ""
    send_at: float | None = None
    priority: str = "low"
    validity_s: float | None = None
    allow_missing: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    to: str
    body: str
    parts: int
    encoding: str
    missing: tuple[str, ...]


@dataclass(slots=True)
class Preview:
    """What a broadcast would send. ``recipients`` counts distinct valid numbers;
    ``sendable`` = ``recipients − opted_out``; ``parts`` and ``encodings`` are over sendable
    recipients; ``estimate_s`` is from the first send to the last under the modems' caps
    (quiet hours included for marketing), ``estimate`` says it in words; ``sticky`` counts
    the sendable recipients who know one of the modems' SIMs (sticky sender: they wait
    for it, which the estimate counts)."""

    recipients: int = 0
    opted_out: int = 0
    invalid: int = 0
    duplicates: int = 0
    sendable: int = 0
    parts: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    max_parts: int = 0
    parts_limit: int = 0
    too_long: int = 0
    too_long_examples: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    missing_examples: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    invalid_examples: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    footer: str | None = None
    modems: int = 0
    sticky: int = 0
    estimate_s: float = 0.0
    estimate: str = ""
    starts_at: datetime | None = None
    finishes_at: datetime | None = None
    quiet_hours: str | None = None
    # what start would queue: (to, body, encoding, parts), suppressed included
    items: list[tuple[str, str, str, int]] = field(default_factory=list, repr=False)


@dataclass(frozen=True, slots=True)
class BroadcastView:
    id: int
    name: str
    template: str
    kind: str
    status: str
    audience: Audience
    priority: str
    send_at: datetime | None
    validity_s: float | None
    allow_missing: bool
    footer: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    cancelled_at: datetime | None
    recipients: int
    parts: int
    stats: BroadcastStats | None = None
    waiting_for_quiet_hours: bool = False
    requested_by: str | None = None
    requested_at: datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None


class BroadcastService:
    """Broadcasts on the queue's database.

    ``limits()`` returns the :class:`RateLimits` of the modems to estimate with (the daemon
    passes those online, or all configured if none is) and ``sims()`` their SIMs in the same
    order (the send log's keys, for the sticky sender; empty: not counted); ``footer`` is
    the opt-out footer of marketing texts (empty: none); quiet hours are the queue's
    (``queue.quiet_hours``).
    """

    def __init__(
        self,
        queue: Queue,
        book: ContactBook,
        *,
        footer: str = "Reply STOP to opt out",
        limits: Callable[[], Sequence[RateLimits]] = lambda: (),
        samples: int = 5,
        sims: Callable[[], Sequence[str]] = lambda: (),
    ) -> None:
        self.queue = queue
        self.book = book
        self.footer = footer
        self.limits = limits
        self.sims = sims
        self.samples = samples

    @property
    def clock(self) -> Callable[[], float]:
        return self.queue.clock

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _check(spec: BroadcastSpec) -> Template:
        if spec.kind not in KINDS:
            raise InvalidRequest(field="kind", detail=f"{spec.kind!r} is not one of transactional, marketing")
        if spec.priority not in PRIORITIES:
            raise InvalidRequest(field="priority", detail=f"{spec.priority!r} is not one of high, normal, low")
        if spec.audience.empty:
            raise InvalidRequest(field="audience", detail="give groups, numbers or a csv")
        return Template(spec.template)

    # ------------------------------------------------------------------ audience and preview

    def _recipients(self, audience: Audience, preview: Preview) -> list[Recipient]:
        region = self.book.default_region
        numbers: list[str] = []
        for raw in audience.numbers:
            try:
                numbers.append(to_e164(raw, region))
            except InvalidNumber as exc:
                preview.invalid += 1
                if len(preview.invalid_examples) < 5:
                    preview.invalid_examples.append({"number": raw, "detail": str(exc)})
        seen_numbers = len(numbers)
        numbers = list(dict.fromkeys(numbers))
        preview.duplicates += seen_numbers - len(numbers)
        recipients = self.book.recipients(groups=audience.groups, numbers=numbers)
        if audience.csv is not None:
            have = {r.number for r in recipients}
            table = read_csv(audience.csv, dict(audience.csv_map))
            for line, cells in table.rows:
                values = {f: cells[i].strip() for i, f in enumerate(table.fields) if f and i < len(cells)}
                try:
                    number = to_e164(values.get("number", ""), region)
                except InvalidNumber as exc:
                    preview.invalid += 1
                    if len(preview.invalid_examples) < 5:
                        preview.invalid_examples.append({"row": line, "number": values.get("number"),
                                                         "detail": str(exc)})
                    continue
                if number in have:
                    preview.duplicates += 1
                    continue
                have.add(number)
                if "name" in values and not values.get("first_name") and not values.get("last_name"):
                    first, _, last = values["name"].partition(" ")
                    values["first_name"], values["last_name"] = first, last.strip()
                values["number"] = number
                values.setdefault("name", f"{values.get('first_name', '')} {values.get('last_name', '')}".strip())
                recipients.append(Recipient(number, values))
        return recipients

    def _opted_out(self, numbers: Sequence[str]) -> set[str]:
        with read_tx(self.queue.engine) as tx:
            return consent.opted_out_among(tx, numbers)

    def preview(self, spec: BroadcastSpec, *, samples: int | None = None, estimate: bool = True) -> Preview:
        """Render every recipient's text and count what would be sent (nothing is stored);
        ``estimate=False`` leaves the time estimate out (start needs only the counts)."""
        template = self._check(spec)
        p = Preview(parts_limit=self.queue.max_parts)
        recipients = self._recipients(spec.audience, p)
        p.recipients = len(recipients)
        opted = self._opted_out([r.number for r in recipients])
        footer = self.footer.strip() if spec.kind == "marketing" else ""
        p.footer = footer or None
        suffix = f"\n{footer}" if footer else ""
        planned: dict[str, tuple[str, int]] = {}
        encodings: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        present: set[str] = set()
        want = samples if samples is not None else self.samples
        for r in recipients:
            body, gaps = template.render(r.fields)
            body += suffix
            if gaps:
                missing.update(gaps)
                if len(p.missing_examples) < 5:
                    p.missing_examples.append({"number": r.number, "missing": list(gaps)})
            for f in template.fields:
                if f not in present and r.fields.get(f):
                    present.add(f)
            got = planned.get(body)
            if got is None:
                if not body.strip():
                    got = ("gsm7", 0)
                else:
                    try:
                        pl = plan(body, national_languages=self.queue.national_languages)
                    except PduError as exc:
                        raise InvalidRequest(field="template",
                                             detail=f"the text for {r.number} cannot be sent: {exc}") from exc
                    got = (pl.encoding, pl.total)
                planned[body] = got
            enc, parts = got
            p.items.append((r.number, body, enc, parts))
            if r.number in opted:
                p.opted_out += 1
                continue
            p.sendable += 1
            p.parts += parts
            encodings[enc] += 1
            p.max_parts = max(p.max_parts, parts)
            if parts > p.parts_limit or parts == 0:
                p.too_long += 1
                if len(p.too_long_examples) < 5:
                    p.too_long_examples.append(r.number)
            if len(p.samples) < want:
                p.samples.append(Sample(r.number, body, parts, enc, gaps))
        p.encodings = dict(encodings)
        p.missing = dict(missing)
        p.unknown_fields = [f for f in template.fields if f not in present] if recipients else list(template.fields)
        if estimate:
            self._estimate(spec, p, opted)
        return p

    def _sticky_parts(self, p: Preview, opted: set[str], sims: Sequence[str]) -> list[int]:
        """Parts waiting for each of ``sims`` (sticky sender): sendable recipients who know it."""
        if not self.queue.sticky_sender or not sims:
            return [0] * len(sims)
        known = self.queue.known_sims([to for to, _, _, _ in p.items if to not in opted])
        where = {sim: i for i, sim in enumerate(sims)}
        counts = [0] * len(sims)
        for to, _, _, parts in p.items:
            i = where.get(known.get(to, ""), -1) if to not in opted else -1
            if i >= 0:
                counts[i] += parts
                p.sticky += 1
        return counts

    def _estimate(self, spec: BroadcastSpec, p: Preview, opted: set[str]) -> None:
        limits = list(self.limits())
        sims = list(self.sims())
        p.modems = len(limits)
        start = spec.send_at if spec.send_at is not None and spec.send_at > self.clock() else self.clock()
        quiet: QuietHours | None = self.queue.quiet_hours if spec.kind == "marketing" else None
        p.quiet_hours = quiet.describe() if quiet is not None else None
        sticky = self._sticky_parts(p, opted, sims) if len(sims) == len(limits) else [0] * len(limits)
        duration = sticky_duration(p.parts, limits, sticky, self.queue.sticky_wait_s)
        end = finish_time(start, duration, quiet)
        p.starts_at = as_datetime(quiet.ends_at(start) if quiet is not None else start)
        p.finishes_at = None if end == float("inf") else as_datetime(end)
        p.estimate_s = end - start
        modems = f"{p.modems} modem{'s' if p.modems != 1 else ''}"
        waits = " (including quiet hours)" if quiet is not None and p.estimate_s > duration + 1 else ""
        known = (f", {p.sticky:,} recipient{'s' if p.sticky != 1 else ''} waiting for the SIM they know"
                 if p.sticky else "")
        p.estimate = (f"≈ {humanize(p.estimate_s)} with {modems}{waits}{known}" if p.modems
                      else "never: no modem is configured")

    # ------------------------------------------------------------------ life cycle

    def create(self, spec: BroadcastSpec, *, created_by: str | None = None) -> BroadcastView:
        """Store a draft (checked: template, kind, priority, a non-empty audience)."""
        self._check(spec)
        if spec.audience.csv is not None:
            read_csv(spec.audience.csv, dict(spec.audience.csv_map))  # a fatal CSV error now, not at start
        now = self.clock()
        with write_tx(self.queue.engine) as tx:
            bid = broadcasts_db.insert_broadcast(
                tx, name=spec.name or f"broadcast {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M}",
                template=spec.template, kind=spec.kind, audience_json=spec.audience.to_json(),
                priority=PRIORITIES[spec.priority], send_at=spec.send_at, validity_s=spec.validity_s,
                allow_missing=spec.allow_missing, created_by=created_by, now=now,
            )
        return self.get(bid, with_stats=False)

    def create_and_start(self, spec: BroadcastSpec, *, created_by: str | None = None, actor: Actor | None = None,
                         approval_over: int | None = None) -> BroadcastView:
        """:meth:`create` then :meth:`start`; when the start is refused the draft is left
        ``cancelled`` (not lying around) and the error raised."""
        view = self.create(spec, created_by=created_by)
        try:
            return self.start(view.id, actor=actor, approval_over=approval_over)
        except Exception:
            self.cancel(view.id, by="start refused")
            raise

    def spec_of(self, broadcast_id: int) -> BroadcastSpec:
        v = self.get(broadcast_id, with_stats=False)
        return BroadcastSpec(
            template=v.template, audience=v.audience, kind=v.kind, name=v.name,
            send_at=v.send_at.timestamp() if v.send_at else None, priority=v.priority,
            validity_s=v.validity_s, allow_missing=v.allow_missing,
        )

    def start(self, broadcast_id: int, *, allow_missing: bool | None = None, actor: Actor | None = None,
              approval_over: int | None = None) -> BroadcastView:
        """Render and queue every recipient's message (one transaction); the broadcast
        becomes ``running``. Refused (409) unless it is a draft; refused (422) when fields
        are missing (unless ``allow_missing``), a text is too long or no one is left.

        ``approval_over`` (given when ``actor`` needs approval for big sends): with more
        recipients than that, nothing is queued; the broadcast waits ``awaiting_approval``
        for another admin (:meth:`approve`). ``actor`` is recorded in the audit trail."""
        p, spec, allow = self._ready(broadcast_id, allow_missing)
        now = self.clock()
        if approval_over is not None and len(p.items) > approval_over:
            if actor is None:
                raise InvalidRequest(field="approval", detail="a start that needs approval must say who asked for it")
            with write_tx(self.queue.engine) as tx:
                broadcasts_db.mark_awaiting_approval(tx, broadcast_id, now, requested_by=actor.label,
                                                     recipients=len(p.items), parts=p.parts, allow_missing=allow)
                audit_write(tx, actor, Action.BROADCAST_REQUEST, broadcast_id,
                            {"recipients": len(p.items), "approval_over": approval_over})
            return self.get(broadcast_id)

        def guard(tx: Tx, batch_id: int) -> None:
            broadcasts_db.mark_started(tx, broadcast_id, now, batch_id=batch_id, recipients=len(p.items),
                                       parts=p.parts, footer=p.footer, allow_missing=allow)
            if actor is not None:
                audit_write(tx, actor, Action.BROADCAST_START, broadcast_id, {"recipients": len(p.items)})

        self._enqueue(broadcast_id, spec, p, guard)
        return self.get(broadcast_id)

    def approve(self, broadcast_id: int, actor: Actor) -> BroadcastView:
        """Start a broadcast ``awaiting_approval`` as :meth:`start` does, with the audience
        as it is now. :class:`ApprovalRefused` when ``actor`` asked for it;
        :class:`InvalidState` (409) unless it is awaiting approval. Whoever may approve
        (an admin) is the caller's business."""
        record = self._awaiting(broadcast_id, actor)
        p, spec, allow = self._ready(broadcast_id, None)
        now = self.clock()

        def guard(tx: Tx, batch_id: int) -> None:
            broadcasts_db.mark_started(tx, broadcast_id, now, batch_id=batch_id, recipients=len(p.items),
                                       parts=p.parts, footer=p.footer, allow_missing=allow,
                                       approved_by=actor.label)
            audit_write(tx, actor, Action.BROADCAST_APPROVE, broadcast_id,
                        {"requested_by": record.requested_by, "recipients": len(p.items)})

        self._enqueue(broadcast_id, spec, p, guard)
        return self.get(broadcast_id)

    def reject(self, broadcast_id: int, actor: Actor) -> BroadcastView:
        """Refuse a broadcast awaiting approval: it is ``cancelled`` (nothing was queued).
        :class:`ApprovalRefused` when ``actor`` asked for it (they may cancel it instead)."""
        record = self._awaiting(broadcast_id, actor)

        def act(tx: Tx, bid: int, now: float) -> None:
            broadcasts_db.reject_broadcast(tx, bid, now, by=actor.label)
            audit_write(tx, actor, Action.BROADCAST_REJECT, bid, {"requested_by": record.requested_by})
        return self._transition(broadcast_id, act)

    def _awaiting(self, broadcast_id: int, actor: Actor) -> BroadcastRecord:
        with read_tx(self.queue.engine) as tx:
            record = broadcasts_db.get_broadcast(tx, broadcast_id)
        if record.status != "awaiting_approval":
            raise InvalidState(f"broadcast {broadcast_id} is {record.status}; only one awaiting approval can be "
                               "approved or rejected")
        if record.requested_by == actor.label:
            raise ApprovalRefused(broadcast_id, actor.label)
        return record

    def _ready(self, broadcast_id: int, allow_missing: bool | None) -> tuple[Preview, BroadcastSpec, bool]:
        """The preview a start queues, refused (422) when it may not be sent."""
        spec = self.spec_of(broadcast_id)
        p = self.preview(spec, samples=0, estimate=False)
        allow = spec.allow_missing if allow_missing is None else allow_missing
        if p.missing and not allow:
            detail = ", ".join(f"{{{f}}} for {n}" for f, n in p.missing.items())
            example = p.missing_examples[0]["number"] if p.missing_examples else ""
            raise InvalidRequest(
                field="template",
                detail=f"fields are missing: {detail} recipient(s) (e.g. {example}); give a default like "
                "{first_name|there}, fill the contacts in, or start with allow_missing"
            )
        if p.too_long:
            raise InvalidRequest(
                field="template",
                detail=f"{p.too_long} recipient(s) would get a text of more than {p.parts_limit} parts or "
                f"an empty one (e.g. {p.too_long_examples[0]}); shorten the template"
            )
        if not p.items:
            raise InvalidRequest(field="audience", detail="it has no valid recipient")
        return p, spec, allow

    def _enqueue(self, broadcast_id: int, spec: BroadcastSpec, p: Preview,
                 guard: Callable[[Tx, int], None]) -> None:
        self.queue.enqueue_many(
            p.items, broadcast_id=broadcast_id, kind=spec.kind, priority=spec.priority,
            send_at=spec.send_at, validity_s=spec.validity_s, guard=guard,
        )

    def _transition(self, broadcast_id: int, action: Callable[[Tx, int, float], None], *,
                    actor: Actor | None = None, audited: Action | None = None) -> BroadcastView:
        with write_tx(self.queue.engine) as tx:
            action(tx, broadcast_id, self.clock())
            if actor is not None and audited is not None:
                audit_write(tx, actor, audited, broadcast_id)
        return self.get(broadcast_id)

    def pause(self, broadcast_id: int, *, actor: Actor | None = None) -> BroadcastView:
        """Hold the messages not yet claimed (those sending finish)."""
        return self._transition(broadcast_id, broadcasts_db.pause_broadcast, actor=actor,
                                audited=Action.BROADCAST_PAUSE)

    def resume(self, broadcast_id: int, *, actor: Actor | None = None) -> BroadcastView:
        view = self._transition(broadcast_id, broadcasts_db.resume_broadcast, actor=actor,
                                audited=Action.BROADCAST_RESUME)
        self.queue.notify()
        return view

    def cancel(self, broadcast_id: int, *, by: str = "api", actor: Actor | None = None) -> BroadcastView:
        """Cancel what is still queued (a draft or one awaiting approval is simply
        cancelled); sending ones finish."""
        def act(tx: Tx, bid: int, now: float) -> None:
            broadcasts_db.cancel_broadcast(tx, bid, now, by=by)
        return self._transition(broadcast_id, act, actor=actor, audited=Action.BROADCAST_CANCEL)

    # ------------------------------------------------------------------ reading

    def get(self, broadcast_id: int, *, with_stats: bool = True, hours: bool = True) -> BroadcastView:
        """One broadcast; ``hours=False`` leaves ``stats.per_hour`` empty (the costliest
        count, which a progress poll does not need)."""
        with read_tx(self.queue.engine) as tx:
            record = broadcasts_db.get_broadcast(tx, broadcast_id)
            stats = (broadcasts_db.broadcast_stats(tx, record.id, started_at=record.started_at, hours=hours)
                     if with_stats or record.status in ("running", "paused") else None)
        return self._view(record, stats)

    def list(self, *, limit: int = 50, hours: bool = True) -> list[BroadcastView]:
        """The newest broadcasts first (with their counts by status; ``hours`` as in :meth:`get`)."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest(field="limit", detail="must be between 1 and 1000")
        with read_tx(self.queue.engine) as tx:
            return [
                self._view(r, broadcasts_db.broadcast_stats(tx, r.id, started_at=r.started_at, replies=False,
                                                            hours=hours))
                for r in broadcasts_db.list_broadcasts(tx, limit=limit)
            ]

    def stats(self, broadcast_id: int) -> BroadcastStats:
        view = self.get(broadcast_id)
        assert view.stats is not None
        return view.stats

    def _view(self, r: BroadcastRecord, stats: BroadcastStats | None) -> BroadcastView:
        status = r.status
        now = self.clock()
        waiting = False
        if status in ("running", "paused") and stats is not None and stats.remaining == 0:
            status = "done"
        elif status == "running" and r.send_at is not None and r.send_at > now:
            status = "scheduled"
        if status == "running" and r.kind == "marketing":
            quiet = self.queue.quiet_hours
            waiting = quiet is not None and quiet.contains(now)
        return BroadcastView(
            id=r.id, name=r.name, template=r.template, kind=r.kind, status=status,
            audience=Audience.from_json(r.audience_json), priority=PRIORITY_NAMES.get(r.priority, str(r.priority)),
            send_at=as_datetime(r.send_at), validity_s=r.validity_s, allow_missing=r.allow_missing, footer=r.footer,
            created_by=r.created_by,
            created_at=as_datetime(r.created_at), updated_at=as_datetime(r.updated_at),  # type: ignore[arg-type]
            started_at=as_datetime(r.started_at), paused_at=as_datetime(r.paused_at),
            cancelled_at=as_datetime(r.cancelled_at),
            recipients=r.recipients, parts=r.parts, stats=stats, waiting_for_quiet_hours=waiting,
            requested_by=r.requested_by, requested_at=as_datetime(r.requested_at), reviewed_by=r.reviewed_by,
            reviewed_at=as_datetime(r.reviewed_at),
        )
