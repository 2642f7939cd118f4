"""Crash safety: the sending daemon is SIGKILLed at random moments and restarted.

The simulated modems live in this process (with some latency, so kills land mid-send); the
daemon (``python -m appliance.queue.run``) is a real subprocess. At the end every message
is in exactly one final state, none is lost, and no part left a modem twice unless its
message is marked ``unknown``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.modem.simulator import SimulatedModem
from appliance.queue import Queue

N_MESSAGES = 300
LONG_EVERY = 10  # every 10th message has 3 parts
BUDGET_S = 30.0


def _daemon(db: str, sims: list[SimulatedModem], log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "appliance.queue.run", "--db", str(db),
            "--min-interval", "0", "--per-minute", "100000", "--per-hour", "100000", "--per-day", "1000000"]
    for sim in sims:
        args += ["--port", f"{sim.name}={sim.path}"]
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_never_resends(
    sim_factory: Callable[..., SimulatedModem], tmp_path: Path, db_url: str
) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20240601")))
    sims = [sim_factory("sim800", name=f"crash{i}", latency_s=0.03) for i in range(3)]
    db = db_url
    queue = Queue(db)
    recipients = [f"+1555{i:07d}" for i in range(N_MESSAGES)]
    bodies = {}
    for i, to in enumerate(recipients):
        body = f"crash test message {i} " + ("x" * 320 if i % LONG_EVERY == 0 else "")
        bodies[queue.enqueue([to], body)[0].id] = to
    log = tmp_path / "daemon.log"

    started = time.monotonic()
    kills = 0
    while time.monotonic() - started < BUDGET_S - 8:
        proc = _daemon(db, sims, log)
        time.sleep(rng.uniform(0.4, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        stats = queue.stats()
        if stats["queued"] + stats["sending"] == 0:
            break
    # A last run without a kill finishes the work, then stops cleanly on SIGTERM.
    runs_before = log.read_text(errors="replace").count("running")
    proc = _daemon(db, sims, log)
    deadline = time.monotonic() + 60  # a loaded 2-core machine: the drain, not a timing test
    # SIGTERM only once the runner has installed its handler (it prints "running").
    while log.read_text(errors="replace").count("running") == runs_before:
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    while time.monotonic() < deadline:
        stats = queue.stats()
        if stats["queued"] + stats["sending"] == 0:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, log.read_text()[-3000:]

    stats = queue.stats()
    assert sum(stats.values()) == N_MESSAGES, stats  # none lost
    assert stats["sent"] + stats["unknown"] == N_MESSAGES, (stats, log.read_text()[-3000:])
    assert kills >= 3

    # What really left the modems, per (recipient, part).
    sent = Counter((r.to, r.part) for sim in sims for r in sim.sent)
    status_of = {m.to: m for m in (queue.get(mid) for mid in bodies)}
    for to, msg in status_of.items():
        parts = range(1, msg.parts + 1)
        if msg.status == "sent":
            # every part left exactly once, through the message's modem
            assert [sent[(to, p)] for p in parts] == [1] * msg.parts, (to, msg)
            assert {r.modem for sim in sims for r in sim.sent if r.to == to} == {msg.modem}
        else:  # unknown: never resent silently
            assert all(sent[(to, p)] <= 1 for p in parts), (to, msg)
            assert any(p.state == "unknown" for p in msg.part_details)
    duplicates = [k for k, n in sent.items() if n > 1 and status_of[k[0]].status != "unknown"]
    assert duplicates == []
    print(f"crash test: {kills} kills, {stats['unknown']} unknown, {stats['sent']} sent")
