"""PostgreSQL restarted mid-drain: the node reports degraded, the API answers 503 with a
clear detail, then everything resumes; nothing accepted is lost or sent twice.

Needs to stop and start the local PostgreSQL cluster (``pg_ctlcluster``, as root — CI and
the project's machines run as root); skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from appliance.modem.simulator import SimulatedModem
from appliance.queue import Queue
from tests.test_nodes_crash import node_config, reaped  # noqa: F401 (fixture)
from tests.utils.daemon import APPLIANCE, Daemon, free_port
from tests.utils.db import empty_tables, postgres_admin_url

N_MESSAGES = 400


def local_cluster() -> tuple[str, str] | None:
    """``(version, name)`` of the local cluster serving the test database, if this process
    may restart it."""
    if os.geteuid() != 0 or shutil.which("pg_lsclusters") is None:
        return None
    if "127.0.0.1" not in postgres_admin_url() and "localhost" not in postgres_admin_url():
        return None
    for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.splitlines():
        version, name, port, status, *_ = line.split()
        if port == "5432" and status.startswith("online"):
            return version, name
    return None


def pg_ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, *(["-m", "fast"] if action == "stop" else [])],
                   check=True, capture_output=True, timeout=60)


@pytest.mark.slow
@pytest.mark.serial
def test_postgresql_restart_mid_drain_degrades_then_resumes(
    sim_factory: Callable[..., SimulatedModem], tmp_path: Path, postgres_database: str, reaped: list[Daemon]
) -> None:
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("restarting PostgreSQL needs root and a local cluster on port 5432 (pg_ctlcluster)")
    url = postgres_database
    empty_tables(url)
    sims = [sim_factory("sim800", name=f"r{i}", latency_s=0.05) for i in (1, 2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    made = subprocess.run([*APPLIANCE, "keys", "create", "restart", "--scope", "admin"],
                          env={**env, "APPLIANCE_APPLIANCE__DATABASE_URL": url}, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    port = free_port()
    node = Daemon(node_config(tmp_path, "solo", url, port, sims), port, tmp_path / "solo.log")
    reaped.append(node)
    node.start()
    node.wait_ready()
    to = [f"+1415301{i:04d}" for i in range(N_MESSAGES)]
    r = httpx.post(f"{node.url}/v1/messages", json={"to": to, "body": "restart test"}, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30
    while sum(len(s.sent) for s in sims) < N_MESSAGES // 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    pg_ctl(cluster, "stop")
    try:
        time.sleep(1.0)
        health = httpx.get(f"{node.url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "degraded", health.text
        refused = httpx.post(f"{node.url}/v1/messages", json={"to": ["+14153019999"], "body": "during"},
                             headers=headers, timeout=15)
        assert refused.status_code in (401, 503), refused.text  # the key cannot be checked either
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "database" in refused.json()["detail"]
        sent_while_down = sum(len(s.sent) for s in sims)
        time.sleep(2.0)
        # Nothing new leaves while the database cannot record it (at most the parts in flight).
        assert sum(len(s.sent) for s in sims) - sent_while_down <= 2
    finally:
        pg_ctl(cluster, "start")

    queue = Queue(url)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        stats = queue.stats()
        if stats["queued"] + stats["sending"] == 0:
            break
        time.sleep(0.2)
    stats = queue.stats()
    assert stats["queued"] + stats["sending"] == 0, (stats, node.log.read_text()[-3000:])
    assert sum(stats.values()) == N_MESSAGES  # nothing accepted lost (the refused post added nothing)
    after = httpx.get(f"{node.url}/healthz", timeout=10)
    assert after.status_code == 200, after.text
    assert node.stop() == 0, node.log.read_text()[-3000:]
    received = Counter(rec.to for s in sims for rec in s.sent)
    unknown = {m.to for m in queue.list(status="unknown", limit=1000).items}
    assert {n for n, c in received.items() if c > 1} <= unknown
    assert stats["sent"] + stats["delivered"] + stats["unknown"] == N_MESSAGES
    queue.close()
