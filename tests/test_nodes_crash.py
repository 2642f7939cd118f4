"""Three `appliance serve` nodes on one PostgreSQL database, SIGKILLed mid-drain.

Each node drives two simulated modems that live in this process (so what they received
survives the kills). 3,000 messages, some multipart, are posted across the three APIs.
Node "b" is SIGKILLed mid-drain and restarted later; node "c" is SIGKILLed and left dead.
At the end: every message is in one final state; no part reached a modem twice unless its
message is ``unknown``; no SIM sent faster than its minimum interval; the dead node's
in-flight work was taken over by a survivor and its queued work sent by the others.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from appliance.modem.simulator import SimulatedModem
from appliance.queue import Queue
from tests.utils.daemon import Daemon, create_api_key, free_port, toml_config
from tests.utils.db import empty_tables

N_MESSAGES = 3000
LONG_EVERY = 10  # every 10th message has 3 parts
MIN_INTERVAL_S = 0.02
NODES = ("a", "b", "c")


def node_config(tmp_path: Path, name: str, url: str, port: int, sims: list[SimulatedModem]) -> Path:
    caps = {"max_parts_per_minute": 100000, "max_parts_per_hour": 100000, "max_parts_per_day": 100000}
    path = tmp_path / f"{name}.toml"
    path.write_text(toml_config({
        "appliance": {"database_url": url, "log_level": "INFO"},
        "api": {"host": "127.0.0.1", "port": port},
        "node": {"name": name, "node_lease_s": 5, "heartbeat_s": 0.5},
        "modems": [{"name": sim.name, "port": sim.path, "min_interval_s": MIN_INTERVAL_S, **caps} for sim in sims],
    }))
    return path


@pytest.fixture
def reaped() -> Iterator[list[Daemon]]:
    """Nodes a test starts: killed at teardown whatever happened."""
    started: list[Daemon] = []
    yield started
    for node in started:
        node.reap()


@pytest.mark.slow
def test_three_nodes_one_killed_and_back_one_dead_lose_and_duplicate_nothing(
    sim_factory: Callable[..., SimulatedModem], tmp_path: Path, postgres_database: str, reaped: list[Daemon]
) -> None:
    url = postgres_database
    empty_tables(url)
    sims = {n: [sim_factory("sim800", name=f"{n}{i}", latency_s=0.01) for i in (1, 2)] for n in NODES}
    key = create_api_key(url, "crash")
    nodes: dict[str, Daemon] = {}
    for n in NODES:
        port = free_port()
        nodes[n] = Daemon(node_config(tmp_path, n, url, port, sims[n]), port, tmp_path / f"{n}.log")
        reaped.append(nodes[n])
        nodes[n].start()
    for node in nodes.values():
        node.wait_ready()

    # Post across the three APIs: batches of 100 recipients, every 10th message long.
    bodies: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {key}"}
    for batch in range(N_MESSAGES // 100):
        node = nodes[NODES[batch % 3]]
        short = [f"+1415{200 + batch}{i:04d}" for i in range(100) if i % LONG_EVERY]
        long_ = [f"+1415{200 + batch}{i:04d}" for i in range(100) if not i % LONG_EVERY]
        for to, body in ((short, f"batch {batch} short"), (long_, f"batch {batch} long " + "z" * 320)):
            r = httpx.post(f"{node.url}/v1/messages", json={"to": to, "body": body}, headers=headers, timeout=30)
            assert r.status_code == 202, r.text
            for number in to:
                bodies[number] = body
    queue = Queue(url)

    def done() -> int:
        stats = queue.stats()
        return N_MESSAGES - stats["queued"] - stats["sending"]

    def wait_done(at_least: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while done() < at_least and time.monotonic() < deadline:
            time.sleep(0.05)

    wait_done(N_MESSAGES // 5, 60)
    nodes["b"].kill()
    wait_done(2 * N_MESSAGES // 5, 60)
    nodes["c"].kill()
    killed_c_at = time.time()
    time.sleep(1.0)
    nodes["b"].start()
    nodes["b"].wait_ready()
    wait_done(N_MESSAGES, 120)
    stats = queue.stats()
    assert stats["queued"] + stats["sending"] == 0, (stats, nodes["a"].tail())
    for n in ("a", "b"):
        assert nodes[n].stop() == 0, nodes[n].tail()

    # Every message in one final state, none lost.
    assert sum(stats.values()) == N_MESSAGES
    unknown = {m.to for m in _all(queue, "unknown")}
    # From the modems' side: no part twice unless its message is unknown; right texts.
    received = Counter()
    for group in sims.values():
        for sim in group:
            for record in sim.sent:
                received[(record.to, record.part)] += 1
                assert record.text and record.text in bodies[record.to]
    twice = {to for (to, _part), count in received.items() if count > 1}
    assert twice <= unknown, f"sent twice without being unknown: {sorted(twice - unknown)[:5]}"
    sent_or_delivered = [m for status in ("sent", "delivered") for m in _all(queue, status)]
    for m in sent_or_delivered:
        assert all(received[(m.to, part)] >= 1 for part in range(1, m.parts + 1)), m
    # Caps: no SIM ever sent two parts closer than its minimum interval, across restarts.
    for group in sims.values():
        for sim in group:
            times = sorted(r.time for r in sim.sent)
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert not gaps or min(gaps) >= MIN_INTERVAL_S * 0.95, (sim.name, min(gaps))
    # The dead node's work: taken over by a survivor; nothing sent through it after its death.
    [c] = [n for n in _nodes(queue) if n.name == "c"]
    assert c.recovered_by in ("a", "b")
    for sim in sims["c"]:
        assert all(r.wall_time <= killed_c_at + 0.05 for r in sim.sent)
    survivors = sum(len(s.sent) for n in ("a", "b") for s in sims[n])
    assert survivors > sum(len(s.sent) for s in sims["c"])
    queue.close()


def _all(queue: Queue, status: str) -> list:
    out, cursor = [], None
    while True:
        page = queue.list(status=status, limit=1000, cursor=cursor)
        out += page.items
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _nodes(queue: Queue) -> list:
    from appliance.db import nodes as nodes_db
    from appliance.db.engine import read_tx

    with read_tx(queue.engine) as tx:
        return nodes_db.list_nodes(tx)
