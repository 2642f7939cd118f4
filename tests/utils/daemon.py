"""`appliance serve` as a child process, for tests and bench scripts that SIGKILL it.

The simulated modems stay in the calling process (so what they sent and stored survives a
kill); the daemon finds them by IMEI under the ``[discovery] patterns`` it is given.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from appliance.db.inbound import InboundView
from appliance.queue import Queue

__all__ = ["APPLIANCE", "Daemon", "all_inbound", "create_api_key", "free_port", "run_after_start", "toml_config"]

ROOT = Path(__file__).resolve().parents[2]
APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_config(sections: Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]) -> str:
    """TOML text: a mapping is a ``[table]``, a list of mappings an ``[[array]]`` of tables."""
    out: list[str] = []
    for name, body in sections.items():
        tables = [body] if isinstance(body, Mapping) else list(body)
        header = f"[{name}]" if isinstance(body, Mapping) else f"[[{name}]]"
        for table in tables:
            out.append(header)
            out.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
            out.append("")
    return "\n".join(out)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(extra)
    return env


def create_api_key(database_url: str, name: str = "tests") -> str:
    """An admin API key made with the CLI (``keys create``)."""
    proc = subprocess.run([*APPLIANCE, "keys", "create", name, "--scope", "admin"],
                          env=_clean_env(APPLIANCE_APPLIANCE__DATABASE_URL=database_url),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"keys create failed: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


_START = (
    "import sys\n"
    "from appliance.config import load_settings\n"
    "from appliance.startup import prepare_database\n"
    "from appliance.daemon import Appliance\n"
    "settings = load_settings()\n"
    "prepare_database(settings)\n"
    "app = Appliance(settings)\n"
)


def run_after_start(database_url: str, code: str, *, env: Mapping[str, str] | None = None,
                    timeout: float = 60) -> str:
    """What a new Python process prints that builds the daemon as ``appliance serve`` does
    (settings from a clean environment plus ``env``, the database prepared, ``app`` the
    :class:`~appliance.daemon.Appliance`, ``sys`` imported), then runs ``code``."""
    proc = subprocess.run([sys.executable, "-c", _START + code],
                          env=_clean_env(APPLIANCE_APPLIANCE__DATABASE_URL=database_url, **(env or {})),
                          capture_output=True, text=True, timeout=timeout, check=True, cwd=ROOT)
    return proc.stdout


def all_inbound(database_url: str) -> list[InboundView]:
    """Every stored inbound message, oldest first."""
    queue = Queue(database_url)
    try:
        items: list[InboundView] = []
        cursor: str | None = None
        while True:
            page = queue.list_inbound(limit=500, cursor=cursor)
            items.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return list(reversed(items))
    finally:
        queue.engine.dispose()


class Daemon:
    """``appliance serve --config <config>`` in a child process; output appended to ``log``."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.log = config, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*APPLIANCE, "serve", "--config", str(self.config)],
                                         env=_clean_env(), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/healthz`` answers (modems may still be coming online)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(f"the daemon exited: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the daemon did not answer in {timeout:g} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def reap(self) -> None:
        """Kill it if it still runs (a test that failed half way)."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""
