"""``/healthz`` reasons, the stuck-queue rule, recovery after a power cut, and the start-up
checks that refuse to run the daemon (exit code 78, one line)."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.config import Settings
from appliance.daemon import Appliance
from appliance.health import stuck_queue
from appliance.queue import BudgetView, Queue
from appliance.db.engine import write_tx
from appliance.startup import StartupRefused, prepare_database

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def settings_for(db: Path, **sections: Any) -> Settings:
    return Settings.model_validate({"appliance": {"database_url": f"sqlite:///{db}"}, **sections})


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Any]:
    """``start(settings_dict, simulate=0)`` → (Appliance, TestClient); stopped afterwards."""
    started: list[tuple[Appliance, TestClient]] = []

    def start(sections: dict[str, Any], simulate: int = 0) -> tuple[Appliance, TestClient]:
        appliance = Appliance(settings_for(tmp_path / "health.db", simulator={"latency_s": 0.0}, **sections),
                              simulate=simulate, modem_kwargs={"poll_interval": 30.0})
        appliance.start()
        client = TestClient(create_app(appliance))
        started.append((appliance, client))
        return appliance, client

    yield start
    for appliance, client in started:
        client.close()
        appliance.stop(5)


def test_no_modem_online_names_each_offline_modem(running: Any) -> None:
    appliance, client = running({"modems": [{"name": "absent", "port": "/dev/ttyUSB-not-here"}]})
    deadline = time.monotonic() + 5
    while appliance.modems[0].state != "offline":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = client.get("/healthz")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "degraded" and doc["modems_online"] == 0 and doc["modems_total"] == 1
    assert "no modem is online" in doc["reasons"]
    assert any(reason.startswith("modem absent is offline") for reason in doc["reasons"])


def test_low_disk_threshold_degrades_and_a_healthy_appliance_is_ok(running: Any) -> None:
    appliance, client = running({}, simulate=1)
    assert appliance.wait_online(10)
    doc = client.get("/healthz").json()
    assert doc["status"] == "ok" and doc["reasons"] == [] and doc["disk_free_mb"] > 0
    free = shutil.disk_usage(Path(appliance.queue.engine.url.database).parent).free / 2**20
    appliance.settings.health.min_free_disk_mb = free * 10  # above what the filesystem has
    doc = client.get("/healthz").json()
    assert doc["status"] == "degraded"
    assert [r for r in doc["reasons"] if r.startswith("disk almost full")], doc["reasons"]


def test_a_damaged_database_answers_503(running: Any, tmp_path: Path) -> None:
    appliance, client = running({})
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database at all " * 500)
    appliance.queue = Queue(broken, migrate_schema=False)  # what the API reads from now on
    r = client.get("/healthz")
    assert r.status_code == 503
    doc = r.json()
    assert doc["status"] == "degraded" and doc["queue_depth"] is None
    assert any("database did not answer" in reason for reason in doc["reasons"])


def test_messages_left_mid_send_are_reported_as_unknown(running: Any, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    q = Queue(tmp_path / "health.db")
    [message] = q.enqueue(["+14155550100"], "interrupted by a power cut")
    claim = q.claim("sim1", max_parts=10)
    assert claim is not None and q.begin_part(claim, claim.parts[0], time.time()) == "go"
    q.close()  # as if the power went here: the part is 'submitting'
    with caplog.at_level(logging.INFO, logger="appliance.daemon"):
        appliance, client = running({})
    assert "1 message(s) recovered as unknown" in caplog.text
    doc = client.get("/healthz").json()
    assert doc["recovered_unknown"] == 1
    assert any("resend" in line for line in doc["info"])
    assert "unknown" not in " ".join(doc["reasons"])  # a fact, not a fault
    assert appliance.queue.get(message.id).status == "unknown"


# ----------------------------------------------------------------------------- stuck queue

@dataclass
class Modem:
    """What stuck_queue reads of a modem (a value object, not a stand-in for a device)."""

    name: str
    online: bool = True
    state: str = "online"


def budget(name: str, left: int = 5, next_allowed_at: float = 0.0) -> BudgetView:
    return BudgetView(name, left, left, left, next_allowed_at)


def test_stuck_queue_is_work_waiting_on_an_idle_modem_with_budget(db_url: str) -> None:
    now = time.time()
    q = Queue(db_url, clock=lambda: now - 1200)  # queued 20 min ago
    q.enqueue(["+14155550100", "+14155550101"], "waiting")
    engine, after = q.engine, 600.0
    a, b = Modem("a"), Modem("b", online=False, state="offline")

    reason = stuck_queue(engine, [a, b], {"a": budget("a")}, after_s=after, now=now)
    assert reason is not None and reason.startswith("queue stuck: 2 message(s) due for up to 20 min")
    assert "while a is online" in reason
    # Out of budget (a capped SIM): the backlog waits by design.
    assert stuck_queue(engine, [a], {"a": budget("a", left=0)}, after_s=after, now=now) is None
    assert stuck_queue(engine, [a], {"a": budget("a", next_allowed_at=now + 30)}, after_s=after, now=now) is None
    # No online modem: "no modem is online" says it already.
    assert stuck_queue(engine, [b], {"b": budget("b")}, after_s=after, now=now) is None
    # Not due long enough yet.
    assert stuck_queue(engine, [a], {"a": budget("a")}, after_s=1500, now=now) is None
    # A rate-capped backlog that moves is not stuck: the modem sent a part recently.
    with write_tx(engine) as tx:
        tx.exec_driver_sql("INSERT INTO send_log (modem, at) VALUES ('a', ?)", (now - 60,))
    assert stuck_queue(engine, [a], {"a": budget("a")}, after_s=after, now=now) is None
    q.close()


# ----------------------------------------------------------------------------- refusing to start

def serve(tmp_path: Path, db: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{db}"
    env.update(env_extra)
    return subprocess.run([*APPLIANCE, "serve", "--simulate", "1", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single error line (log lines before it are allowed; it must be the last)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert errors[0].startswith("error: not starting: ")
    return errors[0]


def test_start_is_refused_when_the_database_directory_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("in the way")
    with pytest.raises(StartupRefused, match="cannot create the database directory") as refused:
        prepare_database(settings_for(tmp_path / "afile" / "sub" / "appliance.db"))
    assert refused.value.exit_code == 78 and f"{tmp_path / 'afile'} is a file" in str(refused.value)


def test_start_is_refused_on_a_read_only_directory_even_for_root(tmp_path: Path) -> None:
    """An immutable directory (chattr +i) refuses writes to root too, unlike chmod."""
    state = tmp_path / "state"
    state.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(state)],
                                                        capture_output=True).returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("chattr +i is not available here, and root ignores chmod 0555")
        state.chmod(0o555)
    try:
        proc = serve(tmp_path, state / "appliance.db")
    finally:
        subprocess.run(["chattr", "-i", str(state)], capture_output=True)
        state.chmod(0o755)
    assert proc.returncode == 78
    line = one_line(proc)
    assert f"the database directory {state} is not writable" in line


def test_start_is_refused_when_the_disk_is_full(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    with pytest.raises(StartupRefused, match="is full") as refused:
        prepare_database(settings_for(db, health={"refuse_start_below_mb": 1e12}))
    assert refused.value.exit_code == 78
    assert not db.exists()


def test_start_is_refused_on_a_damaged_database_with_restore_advice(tmp_path: Path) -> None:
    db = tmp_path / "appliance.db"
    q = Queue(db)
    q.enqueue([f"+1415555{i:04d}" for i in range(200)], "some rows to spread over pages " * 4)
    q.close()
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as f:  # what a torn write on a bad SD card looks like
        f.seek((root - 1) * page_size)
        f.write(os.urandom(page_size))
    with pytest.raises(StartupRefused, match=r"is damaged \(PRAGMA quick_check") as refused:
        prepare_database(settings_for(db))
    assert refused.value.exit_code == 78 and "appliance restore" in str(refused.value)
