"""sd_notify and the watchdog, received on real AF_UNIX datagram sockets.

In-process: a :class:`Supervisor` on uvicorn's loop over an appliance with a simulated
modem feeds WATCHDOG=1 until a dispatcher worker hangs in a send (the simulator goes
silent while the modem waits for a '> ' prompt far longer than the send may take), then
feeds again once the worker is back. As a subprocess: ``appliance serve`` under a fake
service manager (abstract socket) says READY=1, STATUS=, WATCHDOG=1 and STOPPING=1.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance import systemd

APPLIANCE = [sys.executable, "-m", "appliance.cli"]


class NotifySocket:
    """A bound AF_UNIX datagram socket collecting what the daemon sends."""

    def __init__(self, address: str) -> None:
        self.address = address  # as NOTIFY_SOCKET spells it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.received: list[str] = []

    def drain(self) -> list[str]:
        """Every datagram that arrived so far (each split into its lines)."""
        new: list[str] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                break
            new += data.decode().splitlines()
        self.received += new
        return new

    def wait_for(self, line: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.drain() or line in self.received:
                return
        raise AssertionError(f"{line!r} not received; got {self.received[-10:]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
    yield sock
    sock.close()


def test_notify_sends_datagrams_to_a_path_and_to_an_abstract_address(
        notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    assert systemd.notify("READY=1", "STATUS=hello") is True
    assert notify_socket.drain() == ["READY=1", "STATUS=hello"]
    abstract = NotifySocket(f"@appliance-test-{secrets.token_hex(6)}")
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", abstract.address)
        assert systemd.notify("WATCHDOG=1") is True
        assert abstract.drain() == ["WATCHDOG=1"]
    finally:
        abstract.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.notify("READY=1") is False  # outside systemd: nothing to do
    monkeypatch.setenv("NOTIFY_SOCKET", str(Path(notify_socket.address).with_name("nobody.sock")))
    assert systemd.notify("READY=1") is False  # nobody listening: no exception


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0


@pytest.mark.parametrize("journal", [True, False])
def test_log_lines_under_journald_have_no_time_stamp_but_a_priority(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal: bool) -> None:
    import logging

    from appliance.daemon import log_handler

    with open(tmp_path / "stderr.txt", "w+") as stream:
        st = os.fstat(stream.fileno())
        # The variable names the stream systemd connected; another stream is not the journal.
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + (0 if journal else 1)}")
        handler = log_handler(stream)
        logger = logging.getLogger("appliance.test-journal")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning("[sim1] hello")
            logger.error("[sim1] bad")
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
        stream.seek(0)
        lines = stream.read().splitlines()
    if journal:
        assert lines == ["<4>WARNING appliance.test-journal: [sim1] hello",
                         "<3>ERROR appliance.test-journal: [sim1] bad"]
    else:
        assert lines[0].endswith("WARNING appliance.test-journal: [sim1] hello")
        assert lines[0][:4].isdigit()  # starts with the date


# ----------------------------------------------------------------------------- in-process watchdog

def _start_supervised(settings: dict, modem_kwargs: dict, watchdog_s: float):  # type: ignore[no-untyped-def]
    import uvicorn

    from appliance.api import create_app
    from appliance.config import Settings
    from appliance.daemon import Appliance
    from appliance.supervision import Supervisor

    appliance = Appliance(Settings.model_validate(settings), simulate=1, modem_kwargs=modem_kwargs)
    appliance.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(appliance), log_config=None, access_log=False))
    supervisor = Supervisor(appliance, watchdog_s=watchdog_s, status_every_s=0.2)
    thread = threading.Thread(target=supervisor.run_server, args=(server, [sock]), daemon=True)
    thread.start()
    return appliance, server, supervisor, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_watchdog_is_fed_only_while_every_worker_makes_progress(
        tmp_path: Path, notify_socket: NotifySocket) -> None:
    settings = {
        "appliance": {"database_url": f"sqlite:///{tmp_path / 'wd.db'}"},
        "simulator": {"latency_s": 0.0},
        # A send may take its 0.7 s timeout plus 0.3 s; the modem waits 3 s for the prompt.
        "health": {"worker_stuck_margin_s": 0.3},
    }
    modem_kwargs = {"send_timeout": 0.7, "command_timeout": 3.0, "poll_interval": 30.0}
    appliance, server, supervisor, thread, url = _start_supervised(settings, modem_kwargs, 0.1)
    try:
        notify_socket.wait_for("READY=1", 10)
        assert appliance.wait_online(10)
        time.sleep(0.5)
        assert notify_socket.drain().count("WATCHDOG=1") >= 3
        assert any(line.startswith("STATUS=1/1 modems online, 0 queued") for line in notify_socket.received)

        appliance.simulators[0].hang(1.5)  # the AT+CMGS gets no '> ' until its 3 s timeout
        appliance.queue.enqueue(["+14155550123"], "are you there?")
        deadline = time.monotonic() + 5
        while not supervisor.problems():
            assert time.monotonic() < deadline, "the hung worker was not noticed"
            time.sleep(0.05)
        assert "is stuck (sending" in supervisor.problems()[0]
        notify_socket.drain()
        time.sleep(0.6)
        assert supervisor.problems(), "the worker came back too early for this test's timing"
        assert "WATCHDOG=1" not in notify_socket.drain()  # nothing fed while it is stuck
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        assert health["status"] == "degraded"
        assert any("dispatcher worker of modem sim1 is stuck" in r for r in health["reasons"])

        # The prompt timeout ends the send; the worker is back and so is the feed.
        deadline = time.monotonic() + 8
        while supervisor.problems():
            assert time.monotonic() < deadline, "the worker did not come back"
            time.sleep(0.05)
        notify_socket.drain()
        time.sleep(0.4)
        assert notify_socket.drain().count("WATCHDOG=1") >= 2
    finally:
        server.should_exit = True
        thread.join(10)
        appliance.stop(5)
    notify_socket.wait_for("STOPPING=1", 2)


def test_a_blocked_event_loop_stops_the_feed(tmp_path: Path, notify_socket: NotifySocket) -> None:
    """The feeder is a task on the server's loop: a request that blocks the loop stops it."""
    import uvicorn

    from appliance.api import create_app
    from appliance.config import Settings
    from appliance.daemon import Appliance
    from appliance.supervision import Supervisor

    appliance = Appliance(Settings.model_validate(
        {"appliance": {"database_url": f"sqlite:///{tmp_path / 'loop.db'}"}}))
    appliance.start()
    app = create_app(appliance)
    block = threading.Event()

    @app.get("/test-block")
    async def blocking() -> dict[str, bool]:  # a defect: sync sleep on the loop
        block.wait(1.0)
        return {"ok": True}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    supervisor = Supervisor(appliance, watchdog_s=0.05)
    thread = threading.Thread(target=supervisor.run_server, args=(server, [sock]), daemon=True)
    thread.start()
    try:
        notify_socket.wait_for("READY=1", 10)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        pinger = threading.Thread(target=lambda: httpx.get(f"{url}/test-block", timeout=5))
        time.sleep(0.2)
        assert notify_socket.drain().count("WATCHDOG=1") >= 2
        pinger.start()
        time.sleep(0.2)  # the loop is now blocked inside the handler
        notify_socket.drain()
        time.sleep(0.5)
        assert notify_socket.drain() == []
        pinger.join(5)
        time.sleep(0.2)
        assert "WATCHDOG=1" in notify_socket.drain()
    finally:
        block.set()
        server.should_exit = True
        thread.join(10)
        appliance.stop(5)


# ----------------------------------------------------------------------------- serve subprocess

def test_serve_notifies_ready_status_watchdog_and_stopping(tmp_path: Path) -> None:
    listener = NotifySocket(f"@appliance-test-{secrets.token_hex(6)}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(NOTIFY_SOCKET=listener.address, WATCHDOG_USEC="200000",
               APPLIANCE_APPLIANCE__DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
               APPLIANCE_SIMULATOR__LATENCY_S="0")
    proc = subprocess.Popen([*APPLIANCE, "serve", "--simulate", "1", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listener.wait_for("READY=1", 20)
        # The API listens by the time READY=1 is sent.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        status = [line for line in listener.received if line.startswith("STATUS=")]
        assert status and "modems online" in status[0] and "queued" in status[0]
        time.sleep(0.5)
        assert listener.drain().count("WATCHDOG=1") >= 3

        # While it runs, the database is locked against a restore.
        restore = subprocess.run([*APPLIANCE, "restore", str(tmp_path / "any.db"), "--yes"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert restore.returncode == 1
        assert f"in use by process {proc.pid}" in restore.stderr

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        listener.wait_for("STOPPING=1", 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
