"""The queue's sending side: the dispatcher's claims and part transitions, crash
recovery, status reports, the send log budgets and the modems/nodes records."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from appliance.db import messages, sending, sticky
from appliance.db import nodes as nodes_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.messages import ModemView, ReportMatch
from appliance.db.nodes import NodeView
from appliance.db.sending import Claim, ClaimedPart, Recovery
from appliance.db.sticky import Sticky
from appliance.queue.base import QueueBase
from appliance.queue.ratelimit import BudgetView, RateLimits, SendBudget

__all__ = ["EXPIRY_SWEEP_S", "Claims"]

# The name these lines always logged under (log filters and tests select on it).
_log = logging.getLogger("appliance.queue.store")

EXPIRY_SWEEP_S = 1.0


class Claims(QueueBase):
    """What the dispatcher calls (``recover``, ``claim``, the ``part_*`` transitions),
    status reports, per-SIM budgets from the send log, and the modems and nodes."""

    # When claim last swept expired messages (-inf: not yet); claim sets it per queue.
    _last_sweep: float = float("-inf")

    # ------------------------------------------------------------------ sticky sender

    def online_sims(self, *, besides: str) -> set[str]:
        """SIMs online in the modems of live nodes other than node ``besides``."""
        with read_tx(self.engine) as tx:
            return sticky.online_sims(tx, besides=besides)

    # ------------------------------------------------------------------ budgets and modems

    def send_times(self, sim: str, *, since: float) -> list[float]:
        """When the SIM ``sim`` (ICCID, or a modem name) handed parts to the network since
        ``since``, on any node (from the shared send log)."""
        with read_tx(self.engine) as tx:
            return messages.send_times(tx, sim, since=since)

    def send_recipients(self, sim: str, *, since: float) -> set[str]:
        """The distinct numbers the SIM ``sim`` sent parts to since ``since`` (send log)."""
        with read_tx(self.engine) as tx:
            return messages.send_recipients(tx, sim, since=since)

    def budget(self, modem: str, limits: RateLimits, *, now: float | None = None, sim: str | None = None) -> BudgetView:
        """Parts left in the minute/hour/day windows and the next allowed send time."""
        now = self.clock() if now is None else now
        budget = SendBudget(limits, self.send_times(sim or modem, since=now - max(limits.windows)))
        return budget.view(modem, now)

    def upsert_modem(self, name: str, *, imei: str | None = None, iccid: str | None = None,
                     model: str | None = None, state: str | None = None, node: str | None = None) -> None:
        """Remember a modem's identity, last state and node (fields given as None are kept)."""
        with write_tx(self.engine) as tx:
            messages.upsert_modem(tx, name, self.clock(), imei=imei, iccid=iccid, model=model, state=state,
                                  node=node)

    def modems(self) -> list[ModemView]:
        with read_tx(self.engine) as tx:
            return messages.list_modems(tx)

    def nodes(self) -> list[NodeView]:
        """Every node that ever used this database, with its state by the database's clock."""
        with read_tx(self.engine) as tx:
            return nodes_db.list_nodes(tx)

    # ------------------------------------------------------------------ status reports

    def apply_status_report(
        self, modem: str, reference: int, recipient: str, status: int, *, at: float | None = None
    ) -> ReportMatch | None:
        """Match a status report on (modem, TP-MR, recipient) within the report window.

        A completed TP-ST delivers the part (the message when all parts are); a temporary
        one keeps it waiting; a permanent one fails part and message. None if no part matched.
        """
        from appliance.pdu.status import status_outcome

        now = self.clock() if at is None else at
        with write_tx(self.engine) as tx:
            return messages.match_status_report(tx, modem, reference, recipient, status, status_outcome(status),
                                                now=now, window_s=self.report_window_s)

    def apply_status_report_event(self, event: Any) -> ReportMatch | None:
        """:meth:`apply_status_report` for an :class:`appliance.modem.StatusReportEvent`."""
        report = event.report
        return self.apply_status_report(event.modem, report.reference, report.recipient, report.status)

    # ------------------------------------------------------------------ dispatcher side

    def recover(self, modems: Sequence[str] | None = None, *, by: str = "start-up") -> Recovery:
        """Crash recovery; run before any worker claims. ``modems`` limits it to those
        modems' work (one node of several); None recovers everything."""
        with write_tx(self.engine) as tx:
            result = sending.recover(tx, self.clock(), modems=modems, by=by)
        if result.unknown or result.requeued:
            _log.warning(
                "recovery (%s): %d message(s) left mid-send are now unknown; %d claim(s) went back to the queue",
                by, len(result.unknown), len(result.requeued),
            )
            self.notify()
        return result

    def claim(self, modem: str, *, max_parts: int, now: float | None = None, sim: str | None = None,
              recipients: Collection[str] | None = None, sticky: Sticky | None = None) -> Claim | None:
        """Claim the next message ``modem`` may send now (at most ``max_parts`` parts);
        ``sim`` is the key its parts are logged under (the SIM's ICCID); with
        ``recipients``, only a message to one of those numbers; ``sticky`` as in
        :func:`appliance.db.sending.claim_next`."""
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        marketing = quiet is None or not quiet.contains(now)
        # Sweeping expired messages costs a statement: at most once a second is enough (a
        # claimed message's own validity is checked again before its first part leaves).
        sweep = not (0 <= now - self._last_sweep < EXPIRY_SWEEP_S)
        # Not fsynced: a claim lost in a power cut is what start-up recovery undoes anyway;
        # the part's "submitting" commit that follows is durable and syncs this one too.
        with write_tx(self.engine, durable=False, pipeline=True) as tx:
            claim = sending.claim_next(tx, modem, max_parts=max_parts, now=now, sweep=sweep,
                                       marketing=marketing, sim=sim, recipients=recipients, sticky=sticky)
        if sweep:
            self._last_sweep = now
        return claim

    def next_wakeup(self, modem: str, *, now: float | None = None, sticky: Sticky | None = None) -> float | None:
        """The earliest due or expiry time of queued work ``modem`` could take (None: none).

        Held messages are not work. Inside quiet hours marketing messages are not work
        until the window ends: then the window's end is their wake-up time.
        """
        now = self.clock() if now is None else now
        quiet = self.quiet_hours
        in_quiet = quiet is not None and quiet.contains(now)
        with read_tx(self.engine) as tx:
            due, marketing_waits, exp = sending.next_times(tx, modem, transactional_only=in_quiet, sticky=sticky)
        if in_quiet and quiet is not None and marketing_waits:
            end = quiet.ends_at(now)
            due = end if due is None else min(due, end)
        times = [t for t in (due, exp) if t is not None]
        return min(times) if times else None

    def begin_part(self, claim: Claim, part: ClaimedPart, now: float) -> str:
        with write_tx(self.engine, pipeline=True) as tx:
            return sending.begin_part(tx, claim, part, now)

    def part_sent(self, claim: Claim, part: ClaimedPart, mr: int, now: float) -> bool:
        with write_tx(self.engine, pipeline=True) as tx:
            return sending.part_sent(tx, claim, part, mr, now)

    def part_sent_and_next(
        self, claim: Claim, part: ClaimedPart, mr: int, now: float, *, max_parts: int,
        recipients: Collection[str] | None = None, sticky: Sticky | None = None,
    ) -> Claim | None:
        """:meth:`part_sent`, then in the same durable transaction claim the next message the
        modem may send now (at most ``max_parts`` parts) and commit its first part
        ``submitting`` (opt-out and validity checked as :meth:`begin_part` does).

        A busy worker so pays one fsync per part instead of two. The returned claim's first
        part is already begun (its ``submitted_at`` is ``now``); None when there is no work
        or the message it found was suppressed or expired instead.
        """
        quiet = self.quiet_hours
        marketing = quiet is None or not quiet.contains(now)
        with write_tx(self.engine, pipeline=True) as tx:
            sending.part_sent(tx, claim, part, mr, now)
            nxt = sending.claim_next(tx, claim.modem, max_parts=max_parts, now=now, sweep=False,
                                     marketing=marketing, sim=claim.sim, recipients=recipients, sticky=sticky)
            if nxt is not None and sending.begin_part(tx, nxt, nxt.parts[0], now) != "go":
                nxt = None
        return nxt

    def part_unknown(self, claim: Claim, part: ClaimedPart, error: str) -> None:
        with write_tx(self.engine) as tx:
            sending.part_unknown(tx, claim, part, self.clock(), error)

    def part_failed(self, claim: Claim, part: ClaimedPart | None, error: str) -> None:
        with write_tx(self.engine) as tx:
            sending.part_failed(tx, claim, part, self.clock(), error)

    def part_retry(self, claim: Claim, part: ClaimedPart, error: str, *, forget_send: bool) -> str:
        delay = self.backoff.delay(claim.attempts + 1)
        with write_tx(self.engine) as tx:
            return sending.part_retry(tx, claim, part, self.clock(), error, delay=delay, forget_send=forget_send)

    def release(self, claim: Claim, reason: str, *, part: ClaimedPart | None = None) -> None:
        with write_tx(self.engine) as tx:
            sending.release(tx, claim, self.clock(), reason, part=part)
        self.notify()
