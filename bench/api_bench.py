"""API benchmark: POST /v1/messages latency under load, idle memory and CPU of the daemon.

    .venv/bin/python bench/api_bench.py [--concurrency 8] [--seconds 10] [--backlog 10000]

Runs the real daemon (``appliance serve --simulate 4``) as a subprocess with its database
in a temporary directory, then measures:

1. idle: RSS of the daemon with 4 simulated modems (target ≤ 80 MB) and its CPU use over
   ``--idle-seconds`` (no busy polling: a few percent of one core at most);
2. load: while the 4 simulated modems (``--latency`` per send) drain a ``--backlog``
   message backlog, ``--concurrency`` clients POST single messages for ``--seconds``;
   p50/p99 latency, printed against the baseline ``GET /healthz`` measured the same way in
   the same run (``ratio`` = POST ÷ healthz).

Figures are medians/percentiles of the requests made; the machine is shared, so quote
medians of a few runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time

import httpx

from common import (
    appliance_env, cpu_seconds, free_port, join_all, make_key, percentile, rss_mb, start_daemon, stop,
)


def hammer(url: str, key: str, *, method: str, concurrency: int, seconds: float, json: dict | None) -> list[float]:
    """``concurrency`` clients repeat one request for ``seconds``; the latencies in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    errors: list[str] = []

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                response = http.request(method, "/v1/messages" if json else "/healthz", json=json)
                mine.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
        with lock:
            latencies.extend(mine)

    join_all([threading.Thread(target=client) for _ in range(concurrency)], errors, "requests")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05, help="simulated send latency")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = appliance_env(f"{tmp}/bench.db", latency_s=args.latency)
        key = make_key(env, "bench", "--scope", "admin").strip().splitlines()[-1]
        daemon = start_daemon(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            time.sleep(2)  # let start-up work settle
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle_cpu = (cpu_seconds(daemon.pid) - cpu0) / (time.monotonic() - t0)
            idle_rss = rss_mb(daemon.pid)
            print(f"idle daemon, 4 simulated modems: RSS {idle_rss:.1f} MB (target <= 80), "
                  f"CPU {idle_cpu * 100:.2f} % of one core")

            baseline = hammer(url, key, method="GET", concurrency=args.concurrency,
                              seconds=args.seconds / 2, json=None)

            recipients = [f"+1415555{i % 10000:04d}" for i in range(args.backlog)]
            started = time.perf_counter()
            r = httpx.post(f"{url}/v1/messages", json={"to": recipients, "body": "backlog"},
                           headers={"Authorization": f"Bearer {key}"}, timeout=120)
            r.raise_for_status()
            print(f"backlog of {args.backlog} accepted in one request: {time.perf_counter() - started:.2f} s")

            posts = hammer(url, key, method="POST", concurrency=args.concurrency, seconds=args.seconds,
                           json={"to": "+14155559999", "body": "benchmark"})
            stats = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            sent = sum(float(line.rsplit(" ", 1)[1]) for line in stats.text.splitlines()
                       if line.startswith("appliance_parts_sent_total{"))
            b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
            p50, p99 = percentile(posts, 50), percentile(posts, 99)
            print(f"baseline GET /healthz at concurrency {args.concurrency}: "
                  f"p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms ({len(baseline)} requests)")
            print(f"POST /v1/messages at concurrency {args.concurrency} while draining: "
                  f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms ({len(posts)} requests, "
                  f"{len(posts) / args.seconds:.0f}/s); ratio to baseline p50 {p50 / b50:.1f}x, "
                  f"p99 {p99 / b99:.1f}x")
            print(f"parts sent by the modems so far: {sent:.0f}; median POST "
                  f"{statistics.median(posts) * 1000:.1f} ms")
        finally:
            stop(daemon)
            if daemon.returncode not in (0, -15, None):
                print(daemon.stderr.read()[-2000:] if daemon.stderr else "", file=sys.stderr)

if __name__ == "__main__":
    main()
