"""The dispatcher against simulated modems on real ptys (ManagedModem → simulator)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from appliance.config import ModemConfig
from appliance.modem.managed import ManagedModem
from appliance.modem.simulator import SimulatedModem
from appliance.queue import Backoff, Dispatcher, Queue, RateLimits
from tests.utils.wait import wait_until

FAST = RateLimits(min_interval_s=0, per_minute=10_000, per_hour=100_000, per_day=1_000_000)
LONG = "z" * 300  # two GSM-7 parts
LONGER = "w" * 400  # three GSM-7 parts


@dataclass
class Rig:
    queue: Queue
    sims: list[SimulatedModem]
    modems: list[ManagedModem]
    dispatcher: Dispatcher | None = None
    stops: list[Any] = field(default_factory=list)

    def start(self, limits: RateLimits | dict[str, RateLimits] = FAST, **kwargs: Any) -> Dispatcher:
        per = limits if isinstance(limits, dict) else {m.name: limits for m in self.modems}
        self.dispatcher = Dispatcher(self.queue, self.modems, limits=per, **kwargs).start()
        return self.dispatcher

    def all_final(self, n: int, states: tuple[str, ...] = ("sent",)) -> bool:
        stats = self.queue.stats()
        return sum(stats[s] for s in states) >= n

    def sent_by(self) -> dict[str, int]:
        return {s.name: len(s.sent) for s in self.sims}


@pytest.fixture
def rig_factory(sim_factory: Callable[..., SimulatedModem], db_url: str) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(n: int, *, latency_s: float = 0.0, backoff: Backoff = Backoff(base_s=0.05, cap_s=0.2),
             max_attempts: int = 5) -> Rig:
        queue = Queue(db_url, backoff=backoff, max_attempts=max_attempts)
        sims = [sim_factory("sim800", name=f"sim{i}", latency_s=latency_s) for i in range(n)]
        modems = []
        rig = Rig(queue, sims, modems)
        for sim in sims:
            cfg = ModemConfig(name=sim.name, port=sim.by_id_path or sim.path)
            modem = ManagedModem(cfg, on_status_report=queue.apply_status_report_event, backoff_initial=0.1,
                                 backoff_max=0.5)
            modem.start()
            modems.append(modem)
        for modem in modems:
            assert modem.wait_online(10), f"{modem.name} did not come online"
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        if rig.dispatcher is not None:
            rig.dispatcher.stop()
        for modem in rig.modems:
            modem.stop(timeout=2)
        rig.queue.close()


def test_round_robin_over_three_modems(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(3, latency_s=0.01)
    rig.start()
    order = []
    for i in range(6):  # one at a time: strict rotation
        mid = rig.queue.enqueue([f"+1555000{i:04d}"], f"rr {i}")[0].id
        assert wait_until(lambda: rig.queue.get(mid).status == "sent")
        order.append(rig.queue.get(mid).modem)
    assert len(set(order[:3])) == 3 and order[3:] == order[:3]
    rig.queue.enqueue([f"+1555100{i:04d}" for i in range(60)], "backlog")  # a backlog: equal shares
    assert wait_until(lambda: rig.all_final(66), timeout=10)
    counts = rig.sent_by()
    assert sum(counts.values()) == 66
    assert max(counts.values()) - min(counts.values()) <= 4, counts


def test_caps_are_never_exceeded_and_nearly_used(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(2)
    # "Minute" shortened to 1 s: 4 parts per sliding second, at least 0.1 s apart.
    limits = RateLimits(min_interval_s=0.1, per_minute=4, per_hour=1000, per_day=1000, windows=(1.0, 100.0, 1000.0))
    rig.queue.enqueue([f"+1555000{i:04d}" for i in range(100)], "capped")
    rig.start(limits)
    time.sleep(3.0)
    rig.dispatcher.stop()
    for sim in rig.sims:
        times = [r.time for r in sim.sent]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= 0.1, f"{sim.name}: min interval broken: {min(gaps):.4f}"
        for t in times:  # every sliding 1 s window ending at a send holds at most 4 sends
            assert sum(1 for s in times if t - 1.0 < s <= t) <= 4, sim.name
        # ~3 s of backlog at 4 per second: the cap is nearly used (12 max, first burst included)
        assert len(times) >= 10, f"{sim.name} sent only {len(times)}"


def test_budget_survives_a_restart(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    limits = RateLimits(min_interval_s=0, per_minute=3, per_hour=1000, per_day=1000, windows=(30.0, 100.0, 1000.0))
    rig.queue.enqueue([f"+1555000{i:04d}" for i in range(3)], "first run")
    rig.start(limits)
    assert wait_until(lambda: rig.all_final(3))
    rig.dispatcher.stop()
    rig.queue.enqueue(["+15559999999"], "after restart")
    rig.start(limits)  # a new dispatcher: its budget is read from the send log
    time.sleep(0.5)
    assert len(rig.sims[0].sent) == 3 and rig.queue.stats()["queued"] == 1
    assert rig.dispatcher.budgets()[rig.sims[0].name].minute_left == 0


def test_multipart_messages_stay_on_one_modem(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(3, latency_s=0.005)
    ids = [v.id for v in rig.queue.enqueue([f"+1555000{i:04d}" for i in range(9)], LONGER)]
    rig.start()
    assert wait_until(lambda: rig.all_final(9), timeout=10)
    records = [r for sim in rig.sims for r in sim.sent]
    assert len(records) == 27
    by_to: dict[str, set[tuple[str, int | None]]] = {}
    for r in records:
        by_to.setdefault(r.to, set()).add((r.modem, r.ref))
    assert all(len(v) == 1 for v in by_to.values()), by_to  # one modem, one concat ref per message
    for mid in ids:
        msg = rig.queue.get(mid)
        assert {p.modem for p in msg.part_details} == {msg.modem}
        assert [p.state for p in msg.part_details] == ["sent"] * 3


def test_unplug_fails_over_and_replug_rejoins(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(2)
    a, b = rig.sims
    rig.start()
    a.unplug()
    assert wait_until(lambda: not rig.modems[0].online)
    rig.queue.enqueue([f"+1555000{i:04d}" for i in range(10)], "while a is away")
    assert wait_until(lambda: rig.all_final(10))
    assert len(a.sent) == 0 and len(b.sent) == 10
    a.replug(new_path=True)
    assert wait_until(lambda: rig.modems[0].online, timeout=10)
    rig.queue.enqueue([f"+1555100{i:04d}" for i in range(20)], "a is back")
    assert wait_until(lambda: rig.all_final(30))
    assert len(a.sent) >= 5, rig.sent_by()


def test_temporary_cms_error_retries_permanent_fails(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    sim = rig.sims[0]
    rig.start()
    sim.fail_sends(42, 2)  # congestion, twice
    retried = rig.queue.enqueue(["+15550000001"], "temporary")[0].id
    assert wait_until(lambda: rig.queue.get(retried).status == "sent")
    msg = rig.queue.get(retried)
    assert msg.attempts == 2 and len(sim.sent) == 1
    assert [e.kind for e in rig.queue.events(retried)] == ["retry", "retry", "sent"]
    sim.fail_sends(21, 1)  # short message transfer rejected: permanent
    failed = rig.queue.enqueue(["+15550000002"], "permanent")[0].id
    assert wait_until(lambda: rig.queue.get(failed).status == "failed")
    assert "21" in rig.queue.get(failed).error and len(sim.sent) == 1


def test_too_many_temporary_errors_fail(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1, max_attempts=3)
    rig.sims[0].fail_sends(42, 5)
    mid = rig.queue.enqueue(["+15550000001"], "doomed")[0].id
    rig.start()
    assert wait_until(lambda: rig.queue.get(mid).status == "failed")
    assert "gave up after 3 attempts" in rig.queue.get(mid).error


def test_priorities_and_send_at(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    sim = rig.sims[0]
    send_at = time.time() + 0.6
    rig.queue.enqueue(["+15550000009"], "scheduled", priority="high", send_at=send_at)
    rig.queue.enqueue(["+15550000001"], "low", priority="low")
    rig.queue.enqueue(["+15550000002"], "normal")
    rig.queue.enqueue(["+15550000003"], "high", priority="high")
    rig.start()
    assert wait_until(lambda: rig.all_final(4), timeout=5)
    assert [r.text for r in sim.sent] == ["high", "normal", "low", "scheduled"]
    assert sim.sent[-1].wall_time >= send_at


def test_expiry_and_cancel(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    sim = rig.sims[0]
    slow = RateLimits(min_interval_s=1.0, per_minute=100, per_hour=1000, per_day=1000)
    ids = [v.id for v in rig.queue.enqueue([f"+1555000{i:04d}" for i in range(3)], "short-lived", validity_s=0.5)]
    later = rig.queue.enqueue(["+15550000099"], "cancel me", send_at=time.time() + 0.3)[0].id
    rig.queue.cancel(later)
    rig.start(slow)
    assert wait_until(lambda: rig.all_final(3, ("sent", "expired")), timeout=5)
    time.sleep(0.4)
    states = sorted(rig.queue.get(i).status for i in ids)
    assert states == ["expired", "expired", "sent"]
    assert len(sim.sent) == 1 and rig.queue.get(later).status == "cancelled"


def test_status_reports_deliver_multipart(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    sim = rig.sims[0]
    rig.start()
    mid = rig.queue.enqueue(["+15550000001"], LONG)[0].id
    assert wait_until(lambda: rig.queue.get(mid).status == "sent")
    first, second = sim.sent
    sim.send_status_report(first.mr, status=0)
    assert wait_until(lambda: rig.queue.get(mid).part_details[0].state == "delivered")
    assert rig.queue.get(mid).status == "sent"
    sim.send_status_report(second.mr, status=0)
    assert wait_until(lambda: rig.queue.get(mid).status == "delivered")


def test_idle_workers_wake_at_once_and_burn_no_cpu(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(2)
    dispatcher = rig.start()
    time.sleep(0.3)
    workers = [w.thread for w in dispatcher.workers]
    cpu_before = _thread_cpu(workers)
    time.sleep(1.0)
    idle_cpu = _thread_cpu(workers) - cpu_before
    assert idle_cpu < 0.02, f"idle workers used {idle_cpu:.3f} s of CPU in 1 s"
    started = time.monotonic()
    mid = rig.queue.enqueue(["+15550000001"], "wake up")[0].id
    assert wait_until(lambda: rig.queue.get(mid).status == "sent", timeout=2, interval=0.002)
    assert time.monotonic() - started < 0.3


def test_stop_lets_the_in_flight_send_finish(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1, latency_s=0.4)
    sim = rig.sims[0]
    ids = [v.id for v in rig.queue.enqueue(["+15550000001", "+15550000002"], "in flight")]
    rig.start()
    assert wait_until(lambda: len(sim.sent) == 1)  # Ctrl-Z arrived; +CMGS comes 0.4 s later
    rig.dispatcher.stop()
    assert rig.queue.get(ids[0]).status == "sent"  # not abandoned mid-PDU
    assert rig.queue.get(ids[1]).status == "queued"  # never started: back in the queue
    assert len(sim.sent) == 1


def _thread_cpu(threads: list[Any]) -> float:
    """CPU seconds used so far by the given threads (Linux: /proc/self/task/<tid>/stat)."""
    total = 0.0
    ticks = __import__("os").sysconf("SC_CLK_TCK")
    for t in threads:
        with open(f"/proc/self/task/{t.native_id}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def test_national_tables_planned_at_enqueue_are_the_ones_sent(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(1)
    rig.queue.national_languages = ("hindi",)
    text = "नमस्ते, कल स्कूल बंद रहेगा। कृपया अपने बच्चे को घर पर रखें। " * 2
    [view] = rig.queue.enqueue(["+14155550100"], text)
    assert view.encoding == "gsm7"  # the Hindi tables: GSM-7 instead of UCS-2
    rig.queue.national_languages = ()  # settings changed meanwhile: the message keeps its tables
    rig.start()
    assert wait_until(lambda: rig.queue.get(view.id).status == "sent")
    sent = rig.sims[0].sent
    assert len(sent) == view.parts and "".join(r.text for r in sorted(sent, key=lambda r: r.part)) == text
