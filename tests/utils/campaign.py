"""The issue-15 fault campaign, shared by ``tests/test_field_soak.py`` and ``bench/soak.py``.

Simulated modems live in this process, ``appliance serve`` in a child process that is
SIGKILLed and restarted on a schedule; the modems are bound by IMEI and found again under
new paths. Messages are queued before the daemon starts (unique bodies, a quarter multipart,
some numbers texted twice); inbound SMS (STOPs among them) arrive during the run; a webhook
receiver is down for the first half. Faults, on a schedule across ``duration_s``: unplug and
replug under a new path, a hang, bursts of CMS 38/42/500, no network, garbage bytes, a full
storage, a SIM that fails every send from then on, and the SIGKILLs.

:func:`run_campaign` returns a :class:`CampaignResult`: what was checked (``problems``, empty
when every promise held — judged from the simulators' logs and the receiver, not from the
database alone) and what was measured (counts, recoveries, utilisation).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
import typing
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import WebhookConfig
from appliance.db import MESSAGE_STATES
from appliance.modem.simulator import SimulatedModem
from appliance.queue import Queue
from appliance.webhooks.outbox import STATUS_KINDS
from tests.utils.daemon import Daemon, all_inbound, free_port, toml_config
from tests.utils.field import HookReceiver

__all__ = ["CampaignResult", "CampaignSpec", "FaultRecord", "run_campaign", "summary"]

PERSONAS = ("sim800", "huawei", "quectel", "sim800")
_MARK = re.compile(r"<m(\d+)\.")
_NOT_DONE = ("queued", "sending", "scheduled", "held")


@dataclass(frozen=True)
class CampaignSpec:
    """The campaign's size and timing (the issue's full numbers are :meth:`full`)."""

    messages: int = 200
    modems: int = 4
    kills: int = 3
    duration_s: float = 30.0
    """Span of the fault schedule (sending, inbound and faults overlap in it)."""
    hang_s: float = 3.0
    no_network_s: float = 4.0
    unplugged_s: float = 1.0
    inbound: int = 40
    latency_s: float = 0.05
    """The simulated modems' answer time to ``AT+CMGS``."""
    min_interval_s: float = 0.3
    max_parts_per_minute: int = 1000
    drain_timeout_s: float = 240.0
    faults: bool = True
    bad_sim_heals: bool = False
    """The failing SIM works again once the schedule is over (keeps a short run short: its
    refusals otherwise leave messages in a retry backoff of up to 40 s)."""
    require_work_moved: bool = True
    """Count a message the failing SIM failed as a problem: SIM health pauses that SIM after
    a few refusals (``modem.paused``) and its work goes out through the others."""

    @classmethod
    def full(cls, **overrides: Any) -> CampaignSpec:
        """The issue's numbers: 2,000 messages, 10 kills, a 20 s hang, 30 s without network."""
        base: dict[str, Any] = dict(messages=2000, kills=10, duration_s=240.0, hang_s=20.0,
                                    no_network_s=30.0, unplugged_s=2.0, inbound=300, min_interval_s=0.3)
        base.update(overrides)
        return cls(**base)


@dataclass
class FaultRecord:
    """One injected fault: wall times of its start and of its end (None: never lifted)."""

    kind: str
    modem: str | None
    at: float
    lifted: float | None = None


@dataclass
class CampaignResult:
    spec: CampaignSpec
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    recoveries: dict[str, list[float]] = field(default_factory=dict)
    """Per fault kind: seconds from the fault to the affected modem(s) sending again."""
    parts_sent: int = 0
    send_span_s: float = 0.0
    paused_events: int = 0
    failed_on_bad_sim: int = 0
    duplicate_deliveries: int = 0
    webhook_refused: int = 0
    wall_s: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)

    @property
    def parts_per_s(self) -> float:
        return self.parts_sent / self.send_span_s if self.send_span_s > 0 else 0.0


def _number(i: int) -> str:
    return f"+1415{5500000 + i:07d}"


def _bodies(spec: CampaignSpec) -> list[tuple[str, str]]:
    """(to, body) per message: unique bodies (each part carries a marker), a quarter
    multipart (3 parts), every 5th number texted twice."""
    out: list[tuple[str, str]] = []
    for i in range(spec.messages):
        to = _number(i - 1 if i % 5 == 1 else i)  # every 5th number gets two messages
        if i % 4 == 0:
            body = " ".join(f"<m{i}.{k}>" + "y" * 40 for k in range(8))  # ~390 chars: 3 parts
        else:
            body = f"<m{i}.0> soak message"
        out.append((to, body))
    return out


def _webhook_events() -> list[str]:
    allowed = set(typing.get_args(typing.get_args(WebhookConfig.model_fields["events"].annotation)[0]))
    return [e for e in ("inbound", "status", "modem.paused") if e in allowed]


def run_campaign(spec: CampaignSpec, workdir: Path, database_url: str,
                 log: Callable[[str], None] = lambda _line: None) -> CampaignResult:
    """Run the campaign in ``workdir`` against ``database_url`` (an empty, migrated
    database, or a SQLite file that does not exist yet) and check its promises."""
    started = time.monotonic()
    result = CampaignResult(spec)
    link_dir = workdir / "dev"
    link_dir.mkdir(parents=True, exist_ok=True)
    sims = [SimulatedModem(PERSONAS[i % len(PERSONAS)], name=f"soak{i + 1}", link_dir=link_dir,
                           latency_s=spec.latency_s) for i in range(spec.modems)]
    hooks = HookReceiver()
    daemon: Daemon | None = None
    try:
        for sim in sims:
            sim.start()
        port = free_port()
        config = workdir / "appliance.toml"
        config.write_text(toml_config({
            "appliance": {"database_url": database_url, "log_level": "INFO"},
            "api": {"host": "127.0.0.1", "port": port},
            "discovery": {"patterns": [f"{link_dir}/ttyUSB*"]},
            "modems": [{"name": s.name, "imei": s.imei, "min_interval_s": spec.min_interval_s,
                        "max_parts_per_minute": spec.max_parts_per_minute,
                        "max_parts_per_hour": 10**6, "max_parts_per_day": 10**6} for s in sims],
            "webhooks": [{"url": hooks.url, "events": _webhook_events(), "timeout_s": 2.0}],
            # SIM health pauses the failing SIMs; a short cool-down lets the probe bring them
            # back within the drain (messages pinned to a paused SIM wait for it).
            "health.sim": {"cooldown_s": 2.0, "cooldown_max_s": 8.0},
        }))
        queue = Queue(database_url)
        queue.enqueue_many(_bodies(spec))
        queue.engine.dispose()
        daemon = Daemon(config, port, workdir / "daemon.log")
        hooks.down = spec.faults
        daemon.start()
        daemon.wait_ready()
        log(f"daemon up; {spec.messages} messages queued")
        expected_inbound = _run_schedule(spec, sims, daemon, hooks, result, log)
        hooks.down = False
        if spec.bad_sim_heals:
            sims[-1].stop_failing()
        log("schedule done; draining")
        _drain(spec, database_url, expected_inbound, hooks, daemon, result)
        if daemon.stop() != 0:
            result.problems.append("the daemon did not stop cleanly")
        _check(spec, sims, database_url, expected_inbound, hooks, result)
    finally:
        if daemon is not None:
            daemon.reap()
        hooks.close()
        for sim in sims:
            sim.stop()
    result.wall_s = time.monotonic() - started
    return result


def _run_schedule(spec: CampaignSpec, sims: list[SimulatedModem], daemon: Daemon, hooks: HookReceiver,
                  result: CampaignResult, log: Callable[[str], None]) -> Counter[tuple[str, str]]:
    """Inject the faults and the inbound traffic; returns the inbound (sender, text) expected."""
    d = spec.duration_s
    expected: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()
    events: list[tuple[float, Callable[[], None]]] = []
    n = len(sims)

    def fault(kind: str, sim: SimulatedModem | None) -> FaultRecord:
        record = FaultRecord(kind, sim.name if sim else None, time.time())
        result.faults.append(record)
        log(f"fault {kind} {record.modem or ''}")
        return record

    # Inbound: spread over the run, every 10th a STOP from a number we text, every 7th long.
    for k in range(spec.inbound):
        def arrive(k: int = k) -> None:
            sim = sims[k % n]
            if k % 10 == 9:
                sender, text = _number(k * 3 % max(1, spec.messages)), "STOP"
            else:
                sender = f"+1415{5600000 + k:07d}"
                text = f"inbound {k} " + ("z" * 200 if k % 7 == 6 else "hello")
            with lock:
                expected[(sender, text)] += 1
            sim.deliver_sms(sender, text)
        events.append((d * (k + 0.5) / spec.inbound, arrive))

    if spec.faults:
        a, b, c, bad = sims[0], sims[1 % n], sims[2 % n], sims[-1]

        def unplug() -> None:
            record = fault("unplug+replug", a)
            a.unplug()
            time.sleep(spec.unplugged_s)
            a.replug(new_path=True)
            record.lifted = time.time()

        def hang() -> None:
            record = fault("hang", b)
            b.hang(spec.hang_s)
            record.lifted = record.at + spec.hang_s

        def bursts() -> None:
            record = fault("cms bursts", c)
            for code in (38, 42, 500):
                c.fail_sends(code, 3)
            record.lifted = record.at

        no_net: list[FaultRecord] = []

        def network_down() -> None:
            no_net.append(fault("no network", a))
            a.set_network(False)

        def network_up() -> None:
            a.set_network(True)
            no_net[-1].lifted = time.time()

        def garbage() -> None:
            for sim in (b, c):
                record = fault("garbage", sim)
                if sim.plugged:
                    sim.inject_garbage(b"\x00\xff\xfe+CMS ERR\r\nOK\x1b[0m\r\n\xc3\x28+CMTI: \"SM\r\n")
                record.lifted = record.at

        def storage_full() -> None:
            record = fault("storage full", c)
            texts = c.fill_storage("+14155599999", prefix=f"full {c.name}")
            with lock:
                for text in texts:
                    expected[("+14155599999", text)] += 1
            record.lifted = record.at

        def bad_sim() -> None:
            fault("fails every send", bad)
            bad.fail_sends(500, count=None)

        def webhook_up() -> None:
            hooks.down = False
            log("webhook receiver up")

        events += [
            (d * 0.10, unplug), (d * 0.20, hang), (d * 0.30, bursts), (d * 0.40, network_down),
            (d * 0.40 + spec.no_network_s, network_up), (d * 0.50, garbage), (d * 0.60, storage_full),
            (d * 0.25, bad_sim), (d * 0.50, webhook_up),
        ]

        def kill() -> None:
            record = fault("SIGKILL", None)
            daemon.kill()
            time.sleep(0.3)
            daemon.start()
            record.lifted = time.time()

        events += [(d * (k + 0.5) / spec.kills, kill) for k in range(spec.kills)]

    t0 = time.monotonic()
    for offset, action in sorted(events, key=lambda e: e[0]):
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action()
    return expected


def _drain(spec: CampaignSpec, url: str, expected_inbound: Counter[tuple[str, str]], hooks: HookReceiver,
           daemon: Daemon, result: CampaignResult) -> None:
    """Wait until no message is left to send, every inbound is stored and every webhook
    event arrived (or the drain timeout passes: the checks then say what is missing)."""
    deadline = time.monotonic() + spec.drain_timeout_s
    queue = Queue(url)
    try:
        while time.monotonic() < deadline:
            if not daemon.running:
                result.problems.append(f"the daemon died: {daemon.tail()}")
                return
            stats = queue.stats()
            if sum(stats[s] for s in _NOT_DONE if s in stats) == 0 \
                    and len(all_inbound(url)) >= sum(expected_inbound.values()) \
                    and not _missing_events(queue, url, hooks):
                return
            time.sleep(0.5)
    finally:
        queue.engine.dispose()


def _expected_events(queue: Queue, url: str) -> set[str]:
    ids = {f"inb_{m.id}" for m in all_inbound(url)}
    ids |= {f"evt_{e.id}" for e in queue.events(limit=10**7) if e.kind in STATUS_KINDS}
    return ids


def _missing_events(queue: Queue, url: str, hooks: HookReceiver) -> set[str]:
    received = {b.get("id") for b in list(hooks.bodies)}
    return _expected_events(queue, url) - received


def _all_messages(queue: Queue) -> list[Any]:
    out: list[Any] = []
    for status in MESSAGE_STATES:
        cursor = None
        while True:
            page = queue.list(status=status, limit=1000, cursor=cursor)
            out += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    return out


def _check(spec: CampaignSpec, sims: list[SimulatedModem], url: str, expected_inbound: Counter[tuple[str, str]],
           hooks: HookReceiver, result: CampaignResult) -> None:
    problems = result.problems
    queue = Queue(url)
    try:
        messages = _all_messages(queue)
        by_id = {m.id: m for m in messages}
        result.counts = dict(Counter(m.status for m in messages))
        # Every message in one final state.
        left = [m.id for m in messages if m.status in _NOT_DONE]
        if left:
            problems.append(f"{len(left)} message(s) never finished: {left[:5]}")
        if len(messages) < spec.messages:
            problems.append(f"{spec.messages - len(messages)} message(s) lost")
        # From the modems' side: which message each logged part belongs to.
        mine = {}
        other: dict[tuple[str, str], int] = {}
        for m in messages:
            mark = _MARK.search(m.body)
            if mark:
                mine[int(mark.group(1))] = m.id
            else:
                other[(m.to, m.body)] = m.id
        seen: Counter[tuple[int, int]] = Counter()
        for sim in sims:
            for r in sim.sent:
                mark = _MARK.search(r.text)
                message_id = mine.get(int(mark.group(1))) if mark else other.get((r.to, r.text))
                if message_id is None:
                    problems.append(f"{sim.name} sent a part no message explains: {r.to} {r.text[:30]!r}")
                    continue
                if by_id[message_id].to != r.to:
                    problems.append(f"message {message_id} part went to {r.to}, not {by_id[message_id].to}")
                seen[(message_id, r.part)] += 1
        twice = sorted({mid for (mid, _), k in seen.items() if k > 1 and by_id[mid].status != "unknown"})
        if twice:
            problems.append(f"{len(twice)} message(s) had a part sent twice without being unknown: {twice[:5]}")
        for m in messages:
            if m.status in ("sent", "delivered"):
                missing = [p for p in range(1, m.parts + 1) if seen[(m.id, p)] < 1]
                if missing:
                    problems.append(f"message {m.id} is {m.status} but parts {missing} reached no modem")
        # The SIM that fails every send: its work went out through the others.
        bad = sims[-1].name if spec.faults else None
        failed = [m for m in messages if m.status == "failed"]
        on_bad = [m.id for m in failed if bad and f"[{bad}]" in (m.error or "")]
        result.failed_on_bad_sim = len(on_bad)
        others = [m for m in failed if m.id not in set(on_bad)]
        if others:
            problems.append(f"{len(others)} message(s) failed: "
                            + "; ".join(f"{m.id} to {m.to} via {m.modem}: {m.error}" for m in others[:3]))
        if on_bad and spec.require_work_moved:
            problems.append(f"{len(on_bad)} message(s) failed on the SIM that fails every send "
                            f"instead of moving to another SIM: {on_bad[:5]}")
        # Caps, from the simulators' clocks.
        for sim in sims:
            times = sorted(r.wall_time for r in sim.sent)
            gaps = [y - x for x, y in zip(times, times[1:])]
            if gaps and min(gaps) < spec.min_interval_s * 0.95:
                problems.append(f"{sim.name} sent two parts {min(gaps):.3f} s apart (min {spec.min_interval_s} s)")
            j = 0
            for i, t in enumerate(times):
                while times[j] <= t - 60.0:
                    j += 1
                if i - j + 1 > spec.max_parts_per_minute:
                    problems.append(f"{sim.name} sent {i - j + 1} parts in a minute")
                    break
        # Every inbound stored once.
        stored = Counter((m.sender, m.body) for m in all_inbound(url))
        lost = expected_inbound - stored
        extra = stored - expected_inbound
        if lost:
            problems.append(f"{sum(lost.values())} inbound message(s) not stored: {list(lost)[:3]}")
        if extra:
            problems.append(f"{sum(extra.values())} inbound message(s) stored twice or unexpected: {list(extra)[:3]}")
        # Every webhook event delivered at least once, the same event on every retry.
        by_event: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for body in list(hooks.bodies):
            by_event[str(body.get("id"))].append(body)
        missing_events = _expected_events(queue, url) - set(by_event)
        if missing_events:
            problems.append(f"{len(missing_events)} webhook event(s) never delivered: {sorted(missing_events)[:5]}")
        changed = [eid for eid, bodies in by_event.items() if any(b != bodies[0] for b in bodies)]
        if changed:
            problems.append(f"{len(changed)} webhook event(s) changed between retries: {changed[:5]}")
        result.duplicate_deliveries = sum(len(v) - 1 for v in by_event.values())
        result.paused_events = len([b for b in hooks.bodies if b.get("type") == "modem.paused"])
        result.webhook_refused = hooks.refused
    finally:
        queue.engine.dispose()
    # Measurements: throughput over the run, and how long each fault kept its modem(s) from sending.
    stamps = sorted((r.wall_time, r.modem) for sim in sims for r in sim.sent)
    # Throughput counts the queued messages only (STOP confirmations trickle in with the STOPs).
    ours = [t for sim in sims for r in sim.sent if _MARK.search(r.text) for t in (r.wall_time,)]
    result.parts_sent = len(ours)
    if len(ours) > 1:
        result.send_span_s = max(ours) - min(ours)
    for record in result.faults:
        if record.lifted is None:
            continue
        after = next((t for t, modem in stamps
                      if t >= record.lifted and (record.modem is None or modem == record.modem)), None)
        if after is not None:
            result.recoveries.setdefault(record.kind, []).append(after - record.at)


def summary(result: CampaignResult) -> list[str]:
    """The result as lines for a report."""
    lines = [
        f"messages {result.spec.messages}, states {dict(sorted(result.counts.items()))}",
        f"parts sent {result.parts_sent} in {result.send_span_s:.1f} s ({result.parts_per_s:.2f} parts/s); "
        f"run {result.wall_s:.1f} s",
        f"webhook: {result.webhook_refused} attempts refused while down, {result.duplicate_deliveries} "
        f"repeated deliveries, modem.paused events {result.paused_events}",
        f"failed on the SIM that fails every send (its attempts used up there): {result.failed_on_bad_sim}",
    ]
    for kind, secs in sorted(result.recoveries.items()):
        lines.append(f"recovery {kind}: n={len(secs)} median {statistics.median(secs):.2f} s "
                     f"max {max(secs):.2f} s")
    lines += [f"PROBLEM: {p}" for p in result.problems] or ["all checks passed"]
    return lines
