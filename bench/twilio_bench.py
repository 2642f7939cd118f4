"""Twilio-compatible API benchmark: ``messages.create`` through the official SDK against
``POST /v1/messages``, both measured in the same run on the same daemon.

    .venv/bin/python bench/twilio_bench.py [--requests 400] [--concurrency 8]

Runs ``appliance serve --simulate 4`` as a subprocess (database in a temporary
directory), makes an API key and a Twilio credential with ``appliance keys create``, then
sends ``--requests`` single messages each way with ``--concurrency`` threads, in
alternating rounds (so a drift of the shared machine hits both alike), and prints p50/p99
of each and the ratio Twilio ÷ /v1 (goal: within 1.5x). The SDK's request includes its
own client-side work (building the request, parsing the response into an object).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(count: int, concurrency: int, make: Callable[[], Callable[[int], None]]) -> list[float]:
    """``count`` calls spread over ``concurrency`` threads, each with its own client."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(share: int) -> None:
        call = make()
        mine: list[float] = []
        try:
            for i in range(share):
                started = time.perf_counter()
                call(i)
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    shares = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"requests failed: {errors[0]!r}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="messages each way")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from twilio.rest import Client

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "APPLIANCE_APPLIANCE__DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "APPLIANCE_APPLIANCE__LOG_LEVEL": "WARNING",
            "APPLIANCE_SIMULATOR__LATENCY_S": "0.05",
            "APPLIANCE_SIMULATOR__MAX_PARTS_PER_MINUTE": "1000000",
            "APPLIANCE_SIMULATOR__MAX_PARTS_PER_HOUR": "1000000",
            "APPLIANCE_SIMULATOR__MAX_PARTS_PER_DAY": "1000000",
        }
        env.pop("APPLIANCE_CONFIG", None)
        key = subprocess.run([*APPLIANCE, "keys", "create", "bench", "--scope", "send"], env=env, cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        out = subprocess.run([*APPLIANCE, "keys", "create", "bench-twilio", "--twilio"], env=env, cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and line[:1].isupper())
        account_sid, token = fields["Account SID"].strip(), fields["Auth Token"].strip()
        daemon = subprocess.Popen([*APPLIANCE, "serve", "--simulate", "4", "--port", str(port)],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).json().get("modems_online") == 4:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise RuntimeError("the daemon did not come up with 4 modems online")
                time.sleep(0.2)
            time.sleep(1)

            def v1() -> Callable[[int], None]:
                http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

                def call(i: int) -> None:
                    r = http.post("/v1/messages", json={"to": f"+1415555{i % 10000:04d}", "body": "benchmark"})
                    r.raise_for_status()

                return call

            def sdk() -> Callable[[int], None]:
                client = Client(account_sid, token)
                client.api.base_url = url

                def call(i: int) -> None:
                    client.messages.create(to=f"+1415555{i % 10000:04d}", body="benchmark")

                return call

            run(16, 4, v1)  # warm up both paths
            run(16, 4, sdk)
            base: list[float] = []
            twilio: list[float] = []
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                base += run(per_round, args.concurrency, v1)
                twilio += run(per_round, args.concurrency, sdk)
            b50, b99 = percentile(base, 50), percentile(base, 99)
            t50, t99 = percentile(twilio, 50), percentile(twilio, 99)
            print(f"POST /v1/messages, {len(base)} requests, {args.concurrency} threads: "
                  f"p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms")
            print(f"Twilio SDK messages.create, {len(twilio)} requests, {args.concurrency} threads: "
                  f"p50 {t50 * 1000:.1f} ms, p99 {t99 * 1000:.1f} ms")
            print(f"ratio Twilio / v1: p50 {t50 / b50:.2f}x, p99 {t99 / b99:.2f}x (goal: within 1.5x)")
        finally:
            daemon.terminate()
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()


if __name__ == "__main__":
    main()
