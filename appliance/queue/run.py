"""A minimal sending daemon: the dispatcher over given ports until SIGTERM/SIGINT.

``python -m appliance.queue.run --db PATH --port NAME=PATH [--port ...] [caps]`` opens the
queue, recovers it (docs/architecture.md, "Crash rules"), starts a :class:`ManagedModem` per port and a
:class:`Dispatcher` over them, and sends until told to stop. Status reports update the
queue; inbound SMS are stored raw. ``appliance serve`` does the same with the REST API on
top; this runner exists for crash tests and headless use.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from appliance.errors import ApplianceError

__all__ = ["main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m appliance.queue.run", description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="the database: a SQLite file or a database URL")
    p.add_argument("--port", action="append", required=True, metavar="NAME=PATH",
                   help="a modem: its name and serial port (repeat for more)")
    p.add_argument("--min-interval", type=float, default=2.0, help="seconds between two parts per SIM")
    p.add_argument("--per-minute", type=int, default=6, help="max parts per SIM per minute")
    p.add_argument("--per-hour", type=int, default=200, help="max parts per SIM per hour")
    p.add_argument("--per-day", type=int, default=1000, help="max parts per SIM per day")
    p.add_argument("--node", default=None,
                   help="this runner's node name on a shared PostgreSQL database (recovers only its own "
                        "modems' work; heartbeats; takes over silent nodes)")
    p.add_argument("--lease", type=float, default=60.0, help="node lease, seconds (with --node)")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from appliance.config import ModemConfig
    from appliance.db.notify import WorkListener
    from appliance.modem.managed import ManagedModem
    from appliance.modem.types import InboundSms, StatusReportEvent
    from appliance.queue.dispatcher import Dispatcher
    from appliance.queue.store import Queue

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        queue = Queue(args.db)
        configs = []
        for spec in args.port:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise ApplianceError(f"--port {spec!r}: write it as NAME=PATH")
            configs.append(ModemConfig(
                name=name, port=path, min_interval_s=args.min_interval,
                max_parts_per_minute=args.per_minute, max_parts_per_hour=args.per_hour,
                max_parts_per_day=args.per_day,
            ))

        def on_report(event: StatusReportEvent) -> None:
            queue.apply_status_report_event(event)

        def on_sms(sms: InboundSms) -> None:
            msg = sms.message
            queue.record_inbound(sms.modem, getattr(msg, "sender", "") or "", getattr(msg, "text", "") or "",
                                 pdu_hex=sms.pdu_hex)

        modems = [ManagedModem(c, on_sms=on_sms, on_status_report=on_report) for c in configs]
        for m in modems:
            m.start()
        member = None
        if args.node:
            from appliance import __version__
            from appliance.queue.nodes import NodeMembership

            member = NodeMembership(queue, args.node, modems=[c.name for c in configs], lease_s=args.lease,
                                    beat_s=args.lease / 6, version=__version__)
            member.join()
        dispatcher = Dispatcher(queue, modems, recover_modems=[c.name for c in configs] if member else None,
                                node=args.node, may_send=member.may_send if member else None).start()
        listener = WorkListener(queue.engine, dispatcher.kick).start()
        if member is not None:
            member.start()
        print("running", flush=True)
        stop.wait()
        dispatcher.stop()
        listener.stop()
        if member is not None:
            member.stop()
        for m in modems:
            m.stop()
        queue.close()
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
