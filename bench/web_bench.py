"""Web pages benchmark: how long the staff pages take on a busy database.

    .venv/bin/python bench/web_bench.py [--recipients 100000] [--requests 30]

Builds a database with one broadcast of N recipients (60 % sent, 20 % of them delivered,
the rest queued) and N/50 replies, starts a real ``appliance serve`` subprocess on it (no
modem, so nothing moves), signs in and times each page. Baseline, measured in the same run:
``GET /healthz`` (one small query). Printed: median and p90 in ms and the median's ratio to
the baseline. The live progress endpoint is fetched once a second by every open broadcast
page, so its cost is what an open tab costs the daemon.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec  # noqa: E402
from appliance.contacts import ContactBook  # noqa: E402
from appliance.queue import Queue  # noqa: E402
from appliance.db.engine import write_tx  # noqa: E402
from appliance.web import Users  # noqa: E402
from common import free_port  # noqa: E402

PASSWORD = "correct horse battery"
PAGES = [
    ("baseline GET /healthz", "/healthz"),
    ("dashboard", "/"),
    ("broadcasts list", "/broadcasts"),
    ("broadcast page", "/broadcasts/1"),
    ("live progress (JSON)", "/broadcasts/1/progress"),
    ("inbox", "/inbox"),
    ("one conversation", "/inbox/%2B14155550007"),
    ("compose", "/compose"),
    ("opt-outs", "/opt-outs"),
]


def build(db: Path, n: int) -> None:
    queue = Queue(f"sqlite:///{db}")
    book = ContactBook(queue.engine, default_region="US", clock=queue.clock)
    service = BroadcastService(queue, book)
    rows = ["number,first_name"] + [f"+1415{555 - i // 10_000:03d}{i % 10_000:04d},P{i}" for i in range(n)]
    spec = BroadcastSpec(template="Hello {first_name}, the school is closed tomorrow.",
                         audience=Audience(csv="\n".join(rows) + "\n"), name="bench")
    view = service.create(spec)
    service.start(view.id)
    now = time.time()
    with write_tx(queue.engine) as tx:
        tx.exec_driver_sql(
            "UPDATE messages SET status = 'sent', sent_at = ? - (id % 7200), modem = 'sim0', updated_at = ? "
            "WHERE id % 10 < 6", (now, now))
        tx.exec_driver_sql(
            "UPDATE messages SET status = 'delivered', delivered_at = sent_at + 5 WHERE id % 10 < 2")
        tx.exec_driver_sql(
            "INSERT INTO inbound (modem, sender, body, received_at, parts, complete) "
            "SELECT 'sim0', recipient, 'Thanks, noted.', ? - id, 1, 1 FROM messages WHERE id % 50 = 7", (now,))
    Users(queue.engine).create("bench", PASSWORD, role="admin")
    queue.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "appliance.db"
        started = time.perf_counter()
        build(db, args.recipients)
        print(f"database: {args.recipients:,} messages, {args.recipients // 50:,} replies "
              f"(built in {time.perf_counter() - started:.1f} s)")
        port = free_port()
        env = {**os.environ, "APPLIANCE_APPLIANCE__DATABASE_URL": f"sqlite:///{db}"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        form = client.get("/login")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
                signed = client.post("/login", data={"username": "bench", "password": PASSWORD,
                                                     "csrf_token": token, "next": "/"})
                assert signed.status_code == 303, signed.text
                results: list[tuple[str, float, float]] = []
                for label, path in PAGES:
                    assert client.get(path).status_code == 200, path  # warm up (templates compiled)
                    times = []
                    for _ in range(args.requests):
                        t0 = time.perf_counter()
                        response = client.get(path)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    times.sort()
                    results.append((label, statistics.median(times), times[int(len(times) * 0.9) - 1]))
            base = results[0][1]
            print(f"{'page':<24} {'p50 ms':>8} {'p90 ms':>8} {'p50 / baseline':>15}")
            for label, p50, p90 in results:
                print(f"{label:<24} {p50:8.1f} {p90:8.1f} {p50 / base:14.1f}x")
        finally:
            daemon.terminate()
            daemon.wait(30)


if __name__ == "__main__":
    main()
