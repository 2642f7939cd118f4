"""What the benchmarks that run the real daemon share: its command, a free port, the
environment of a throw-away appliance, starting and stopping ``appliance serve``, reading
a process's memory and CPU, rates and percentiles, and running worker threads.

The scripts run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and
``from common import ...`` finds this module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "APPLIANCE", "ROOT", "appliance_env", "cpu_seconds", "free_port", "join_all", "make_key", "percentile", "rate",
    "rss_mb", "start_daemon", "stop",
]

ROOT = Path(__file__).resolve().parents[1]
APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second over roughly ``seconds``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed
        n = max(n * 2, int(n * seconds / max(elapsed, 1e-9) * 1.1))


def appliance_env(database: str, *, latency_s: float = 0.05) -> dict[str, str]:
    """The environment of an appliance on the SQLite file ``database`` whose simulated
    modems take ``latency_s`` per send and have no rate caps worth the name."""
    env = {
        **os.environ,
        "APPLIANCE_APPLIANCE__DATABASE_URL": f"sqlite:///{database}",
        "APPLIANCE_APPLIANCE__LOG_LEVEL": "WARNING",
        "APPLIANCE_SIMULATOR__LATENCY_S": str(latency_s),
        "APPLIANCE_SIMULATOR__MAX_PARTS_PER_MINUTE": "1000000",
        "APPLIANCE_SIMULATOR__MAX_PARTS_PER_HOUR": "1000000",
        "APPLIANCE_SIMULATOR__MAX_PARTS_PER_DAY": "1000000",
    }
    env.pop("APPLIANCE_CONFIG", None)
    return env


def make_key(env: dict[str, str], *args: str) -> str:
    """``appliance keys create ARGS``'s standard output."""
    return subprocess.run([*APPLIANCE, "keys", "create", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def start_daemon(env: dict[str, str], port: int, *, modems: int = 4) -> subprocess.Popen[str]:
    """``appliance serve --simulate MODEMS`` on ``port``, once all its modems are online."""
    import httpx

    daemon = subprocess.Popen([*APPLIANCE, "serve", "--simulate", str(modems), "--port", str(port)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json().get("modems_online") == modems:
                return daemon
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or daemon.poll() is not None:
            daemon.kill()
            raise RuntimeError(f"the daemon did not come up: {daemon.stderr.read() if daemon.stderr else ''}")
        time.sleep(0.2)


def stop(daemon: subprocess.Popen[str]) -> None:
    daemon.terminate()
    try:
        daemon.wait(60)
    except subprocess.TimeoutExpired:
        daemon.kill()


def join_all(threads: Sequence[threading.Thread], errors: Sequence[object], what: str) -> None:
    """Start ``threads``, wait for them all, then raise the first of ``errors`` they noted."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{what} failed: {errors[0]!r}")
