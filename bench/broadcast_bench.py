"""Broadcast benchmark: accepting a 100,000-recipient broadcast (render + enqueue).

    .venv/bin/python bench/broadcast_bench.py [--recipients 100000] [--repeats 3]

(a) CSV import of N contacts (one transaction): seconds;
(b) preview of a personalised template over N recipients (resolve, render, plan): seconds;
(c) start = preview again + one ``enqueue_many`` transaction (the time a REST client waits
    for ``POST /v1/broadcasts/{id}/start``): seconds (target: a few);
(d) the claim's cost with those N messages held (paused) and, separately, with them queued
    as marketing inside quiet hours (the claim then walks past them): ms per claim.

Figures are medians of ``--repeats`` runs, each on a fresh database in a temporary
directory (on the disk the temporary directory is on; the appliance's SD card is slower).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.broadcasts import Audience, BroadcastService, BroadcastSpec  # noqa: E402
from appliance.contacts import ContactBook  # noqa: E402
from appliance.queue import Queue, RateLimits  # noqa: E402
from appliance.db.engine import write_tx  # noqa: E402
from appliance.queue.quiet import QuietHours  # noqa: E402
from appliance.db.sending import hold_broadcast_messages  # noqa: E402

TEMPLATE = "Dear {first_name|parent}, {child} ({class}) has a school trip on {date}. Reply YES to confirm."


def _csv(n: int) -> str:
    rows = ["number,first_name,last_name,child,class,date"]
    for i in range(n):
        first = ["Ann", "Łukasz", "Bob", ""][i % 4]
        number = f"+1415{555 - i // 10_000:03d}{i % 10_000:04d}"  # +1415555xxxx, +1415554xxxx, ...
        rows.append(f"{number},{first},Lee,Kid{i},{i % 30}B,Tue {i % 28 + 1} May")
    return "\n".join(rows) + "\n"


def _numbers_ok(text: str) -> None:
    from appliance.numbers import to_e164

    for line in text.splitlines()[1::997]:
        to_e164(line.split(",")[0], "US")


def _claim_ms(queue: Queue, n: int = 50) -> float:
    started = time.perf_counter()
    for _ in range(n):
        assert queue.claim("m1", max_parts=10) is None
    return (time.perf_counter() - started) / n * 1000


def run(recipients: int) -> dict[str, float]:
    csv_text = _csv(recipients)
    _numbers_ok(csv_text)
    with tempfile.TemporaryDirectory(prefix="broadcast-bench-") as tmp:
        queue = Queue(Path(tmp) / "q.db", max_parts=10)
        book = ContactBook(queue.engine)
        t0 = time.perf_counter()
        report = book.import_csv(csv_text, group="all")
        t_import = time.perf_counter() - t0
        assert report.created == recipients, (report.created, report.invalid, report.duplicates, report.issues[:3])
        service = BroadcastService(queue, book, limits=lambda: [RateLimits()] * 4)
        spec = BroadcastSpec(TEMPLATE, Audience(groups=("all",)), kind="marketing")
        t0 = time.perf_counter()
        preview = service.preview(spec)
        t_preview = time.perf_counter() - t0
        draft = service.create(spec)
        t0 = time.perf_counter()
        view = service.start(draft.id)
        t_start = time.perf_counter() - t0
        assert view.stats is not None and view.stats.by_status["queued"] == recipients
        with write_tx(queue.engine) as conn:
            hold_broadcast_messages(conn, draft.id, held=True)
        t_claim_held = _claim_ms(queue)
        with write_tx(queue.engine) as conn:
            hold_broadcast_messages(conn, draft.id, held=False)
        queue.quiet_hours = QuietHours(clock_time(0, 0), clock_time(23, 59), "UTC")
        t_claim_quiet = _claim_ms(queue, 10) if queue.quiet_hours.contains(time.time()) else float("nan")
        queue.close()
    return {
        "import_s": t_import, "preview_s": t_preview, "start_s": t_start, "parts": preview.parts,
        "claim_ms_held": t_claim_held, "claim_ms_quiet": t_claim_quiet,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [run(args.recipients) for _ in range(args.repeats)]
    result = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    result["recipients"] = args.recipients
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
