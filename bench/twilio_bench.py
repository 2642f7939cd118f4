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
import tempfile
import threading
import time
from collections.abc import Callable

import httpx

from common import appliance_env, free_port, join_all, make_key, percentile, start_daemon, stop


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
    join_all([threading.Thread(target=worker, args=(s,)) for s in shares], errors, "requests")
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
        env = appliance_env(f"{tmp}/bench.db")
        key = make_key(env, "bench", "--scope", "send").strip().splitlines()[-1]
        out = make_key(env, "bench-twilio", "--twilio")
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and line[:1].isupper())
        account_sid, token = fields["Account SID"].strip(), fields["Auth Token"].strip()
        daemon = start_daemon(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
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
            stop(daemon)

if __name__ == "__main__":
    main()
