"""Retention benchmark: a purge over many finished messages while a sender keeps sending.

    .venv/bin/python bench/retention_bench.py [--messages 1000000] [--url URL] [--batch 500]
        [--baseline-s 10]

(SQLite in a temporary file by default; ``--url`` a PostgreSQL server URL, on which a fresh
database is created and dropped.) The database is filled with ``--messages`` finished
messages (a year old, each with one event and one send-log row) through ``Tx.insert_rows``.
A sender thread then loops enqueue → claim → submitting → sent (four short transactions,
what a worker does per message) for ``--baseline-s`` alone, then while
``appliance.retention.Retention.run`` erases every body and prunes every event and send-log
row. Printed: the purge's total time; each purge transaction's open time (max, median, p99;
goal: max ≤ 50 ms so sending never stalls); sends/s and the longest single send with and
without the purge, and their ratio. Times come from ``Retention(on_batch=...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config import RetentionSection  # noqa: E402
from appliance.db.engine import write_tx  # noqa: E402
from appliance.queue import Queue  # noqa: E402
from appliance.retention import DAY_S, YIELD_RATIO, Retention  # noqa: E402

CHUNK = 50_000
MESSAGE_COLUMNS = ("id", "batch_id", "recipient", "body", "encoding", "parts", "priority", "status",
                   "created_at", "updated_at", "due_at", "attempts", "max_attempts", "resends", "modem", "sent_at",
                   "delivered_at")


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if not url or url.startswith("sqlite"):
        if url:
            yield url
            return
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{Path(d) / 'retention.db'}"
        return
    from tests.utils.db import fresh_postgres_database

    os.environ["APPLIANCE_TEST_POSTGRES_URL"] = url
    with fresh_postgres_database("appliance_retention_bench") as fresh:
        yield fresh


def fill(queue: Queue, n: int, *, now: float) -> float:
    """``n`` delivered messages a year old, one event and one send-log row each."""
    started = time.perf_counter()
    old = now - 365 * DAY_S
    with write_tx(queue.engine) as tx:
        tx.exec_driver_sql("INSERT INTO batches (id, fingerprint, created_at, count) VALUES (1, 'bench', ?, ?)",
                           (old, n))
    for first in range(1, n + 1, CHUNK):
        ids = range(first, min(first + CHUNK, n + 1))
        with write_tx(queue.engine) as tx:
            tx.insert_rows("messages", MESSAGE_COLUMNS, [
                (i, 1, f"+1415{i:07d}", f"Reminder {i}: the trip leaves at 9 from the main gate.", "gsm7", 1, 1,
                 "delivered", old + i * 1e-3, old + i * 1e-3, old, 1, 3, 0, "bench", old + i * 1e-3, old + i * 1e-3)
                for i in ids
            ])
            tx.insert_rows("events", ("at", "kind", "message_id", "modem"),
                           [(old + i * 1e-3, "delivered", i, "bench") for i in ids])
            tx.insert_rows("send_log", ("modem", "sim", "at", "message_id"),
                           [("bench", "bench", old + i * 1e-3, i) for i in ids])
    if queue.engine.dialect.name == "postgresql":
        with write_tx(queue.engine) as tx:
            tx.exec_driver_sql("SELECT setval(pg_get_serial_sequence('messages', 'id'), ?)", (n,))
            tx.exec_driver_sql("SELECT setval(pg_get_serial_sequence('batches', 'id'), 1)")
            tx.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


class Sender(threading.Thread):
    """Enqueue, claim, commit submitting, mark sent: one message at a time, as fast as it goes."""

    def __init__(self, queue: Queue) -> None:
        super().__init__(daemon=True)
        self.queue = queue
        self.stop_at = threading.Event()
        self.sends: list[tuple[float, float]] = []  # (finished at, seconds it took)

    def run(self) -> None:
        q = self.queue
        i = 0
        while not self.stop_at.is_set():
            started = time.perf_counter()
            q.enqueue([f"+1650{i % 10_000_000:07d}"], "bench")
            claim = q.claim("bench", max_parts=10)
            if claim is None:
                continue
            now = time.time()
            part = claim.parts[0]
            if q.begin_part(claim, part, now) == "go":
                q.part_sent(claim, part, i % 256, now)
            done = time.perf_counter()
            self.sends.append((done, done - started))
            i += 1


def rate(sends: list[tuple[float, float]], start: float, end: float) -> tuple[float, float, float]:
    """(sends/s, p99 send in ms, longest send in ms) between two perf_counter moments."""
    inside = [took for at, took in sends if start <= at < end]
    return len(inside) / max(end - start, 1e-9), 1000 * pct(inside, 0.99), 1000 * max(inside, default=0.0)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--url", default=None, help="a PostgreSQL server URL (default: SQLite in a temp file)")
    parser.add_argument("--batch", type=int, default=RetentionSection().batch)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument("--yield-ratio", type=float, default=YIELD_RATIO,
                        help="the purge's pause after each transaction, in multiples of its time")
    args = parser.parse_args()
    with database(args.url) as url:
        queue = Queue(url)
        try:
            now = time.time()
            engine = queue.engine.dialect.name
            print(f"engine {engine}, {args.messages:,} finished messages, batch {args.batch}, "
                  f"yield ratio {args.yield_ratio}, "
                  f"{os.cpu_count()} CPU(s)", flush=True)
            print(f"fill: {fill(queue, args.messages, now=now):.1f} s", flush=True)
            batches: list[tuple[str, int, float]] = []
            retention = Retention(queue.engine, RetentionSection(body_days=30, log_days=30, batch=args.batch),
                                  on_batch=lambda kind, rows, s: batches.append((kind, rows, s)),
                                  yield_ratio=args.yield_ratio)
            sender = Sender(queue)
            sender.start()
            base_start = time.perf_counter()
            time.sleep(args.baseline_s)
            purge_start = time.perf_counter()
            report = retention.run()
            purge_end = time.perf_counter()
            sender.stop_at.set()
            sender.join()
        finally:
            queue.close()
    ms = [1000 * s for _, _, s in batches]
    base_rate, base_p99, base_worst = rate(sender.sends, base_start, purge_start)
    purge_rate, purge_p99, purge_worst = rate(sender.sends, purge_start, purge_end)
    print(f"purge: {purge_end - purge_start:.1f} s, {len(batches)} transactions; "
          + ", ".join(f"{k} {v:,}" for k, v in report.counts().items()))
    for kind in ("message_bodies", "events", "send_log"):
        these = [1000 * s for k, _, s in batches if k == kind]
        if these:
            print(f"  {kind:15s} {len(these):5d} tx: max {max(these):6.1f} ms, median {statistics.median(these):5.1f} ms, "
                  f"p99 {pct(these, 0.99):6.1f} ms")
    over = sum(1 for m in ms if m > 50)
    print(f"purge transaction: max {max(ms):.1f} ms, median {statistics.median(ms):.1f} ms, "
          f"p99 {pct(ms, 0.99):.1f} ms, p99.9 {pct(ms, 0.999):.1f} ms; {over} of {len(ms)} over 50 ms "
          f"(goal: max <= 50 ms)")
    print(f"sends/s without purge {base_rate:.1f} (one send: p99 {base_p99:.1f} ms, longest {base_worst:.1f} ms), "
          f"during purge {purge_rate:.1f} (p99 {purge_p99:.1f} ms, longest {purge_worst:.1f} ms); "
          f"ratio {purge_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
