"""Soak: the issue-15 fault campaign at full size, and the same run without faults.

    .venv/bin/python bench/soak.py [--full] [--messages 2000] [--kills 10] [--duration 240]
        [--hang 20] [--no-network 30] [--inbound 300] [--min-interval 0.3] [--repeats 1]
        [--database postgresql+psycopg://postgres@127.0.0.1/test]

4 simulated modems in this process, ``appliance serve`` in a child process SIGKILLed on a
schedule (the campaign and its checks: ``tests/utils/campaign.py``). Prints, per run, the
final states, the parts sent, the seconds from each fault to its modem(s) sending again,
the webhook figures and every broken promise; then the utilisation (parts/s over the run)
with faults ÷ the same run without faults, measured in this invocation. ``--full`` is the
issue's numbers (2,000 messages, 10 kills, a 20 s hang, 30 s without network).
With ``--database`` naming a PostgreSQL server a fresh database is made for each run.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.utils.campaign import CampaignResult, CampaignSpec, run_campaign, summary  # noqa: E402


@contextlib.contextmanager
def database(server: str | None, workdir: Path) -> Iterator[str]:
    if not server or server.startswith("sqlite"):
        yield f"sqlite:///{workdir / 'appliance.db'}"
        return
    from tests.utils.db import fresh_postgres_database

    with fresh_postgres_database() as url:
        yield url


def run(spec: CampaignSpec, server: str | None, label: str) -> CampaignResult:
    tmp = tempfile.mkdtemp(prefix="soak-")
    with database(server, Path(tmp)) as url:
        started = time.monotonic()
        result = run_campaign(spec, Path(tmp), url,
                              log=lambda line: print(f"  [{label} {time.monotonic() - started:6.1f} s] {line}",
                                                     flush=True))
    if result.problems:
        print(f"{label}: kept {tmp} (daemon.log, the SQLite database) for a look")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{label}:")
    for line in summary(result):
        print(f"  {line}")
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the issue's numbers")
    p.add_argument("--messages", type=int)
    p.add_argument("--kills", type=int)
    p.add_argument("--duration", type=float, help="seconds the fault schedule spans")
    p.add_argument("--hang", type=float)
    p.add_argument("--no-network", type=float)
    p.add_argument("--inbound", type=int)
    p.add_argument("--min-interval", type=float)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--database", help="a PostgreSQL server URL (default: a SQLite file per run)")
    args = p.parse_args()
    overrides = {k: v for k, v in {
        "messages": args.messages, "kills": args.kills, "duration_s": args.duration, "hang_s": args.hang,
        "no_network_s": args.no_network, "inbound": args.inbound, "min_interval_s": args.min_interval,
    }.items() if v is not None}
    spec = CampaignSpec.full(**overrides) if args.full else CampaignSpec(**overrides)
    print(f"spec: {spec}", flush=True)
    ratios: list[float] = []
    broken = 0
    for i in range(args.repeats):
        faulty = run(spec, args.database, f"faults #{i + 1}")
        clean = run(CampaignSpec(**{**spec.__dict__, "faults": False}), args.database, f"no faults #{i + 1}")
        broken += len(faulty.problems) + len(clean.problems)
        if clean.parts_per_s > 0:
            ratios.append(faulty.parts_per_s / clean.parts_per_s)
            print(f"utilisation #{i + 1}: {faulty.parts_per_s:.2f} ÷ {clean.parts_per_s:.2f} parts/s "
                  f"= {ratios[-1]:.3f}", flush=True)
    if ratios:
        print(f"utilisation with faults ÷ without (median of {len(ratios)}): {statistics.median(ratios):.3f}")
    print("all promises held" if not broken else f"{broken} broken promise(s): see PROBLEM lines")
    return 0 if not broken else 1


if __name__ == "__main__":
    raise SystemExit(main())
