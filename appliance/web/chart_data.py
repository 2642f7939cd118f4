"""The charts of the dashboard and of a broadcast's page: the numbers read through
``appliance.db`` turned into :mod:`appliance.web.charts` figures (local time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from appliance.db import charts as charts_db
from appliance.db import signals as signals_db
from appliance.db.engine import read_tx
from appliance.db.signals import SignalPoint
from appliance.web.charts import Chart, Segment, bar_chart, line_chart, share_bar

__all__ = [
    "DashboardCharts",
    "HOURS_SHOWN_MAX",
    "SIGNAL_DBM_RANGE",
    "broadcast_charts",
    "dashboard_charts",
    "day_bounds",
    "signal_chart",
]

SIGNAL_DBM_RANGE = (-113.0, -51.0)  # what AT+CSQ can report (rssi 0..31)
HOURS_SHOWN_MAX = 168  # a broadcast's hourly chart shows its last week of sending at most


@dataclass(frozen=True, slots=True)
class DashboardCharts:
    """The dashboard's charts: one per measure over the last days, one per modem's signal."""

    daily: list[Chart]
    signal: list[Chart]


def day_bounds(zone: ZoneInfo, days: int, *, now: datetime | None = None) -> list[float]:
    """The ``days + 1`` local midnights framing the last ``days`` days (today included)."""
    today = (now or datetime.now(zone)).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()
            for d in (first + timedelta(days=i) for i in range(days + 1))]


def _day_label(start: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(start, zone).strftime("%a %-d")


def _hour_label(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%H:00")


def signal_chart(modem: str, points: Sequence[SignalPoint], *, zone: ZoneInfo, now: float,
                 hours: int = 24) -> Chart:
    """``modem``'s signal (dBm) over the last ``hours``; the table gives each hour's lowest
    and highest reading."""
    start = now - hours * 3600
    lo, hi = SIGNAL_DBM_RANGE
    series = [(p.at, None if p.dbm is None else float(p.dbm)) for p in points if p.at >= start]
    first_hour = int(start // 3600) * 3600
    ticks = [(float(t), _hour_label(t, zone)) for t in range(first_hour + 3600, int(now) + 1, 3600)
             if datetime.fromtimestamp(t, zone).hour % 6 == 0]
    by_hour: dict[int, list[int]] = {}
    missing = 0
    for p in points:
        if p.at < start:
            continue
        if p.dbm is None:
            missing += 1
        else:
            by_hour.setdefault(int(p.at // 3600) * 3600, []).append(p.dbm)
    table = [(_hour_label(h, zone), f"{min(v)} dBm", f"{max(v)} dBm") for h, v in sorted(by_hour.items())]
    readings = [v for vals in by_hour.values() for v in vals]
    if readings:
        last = next(p for p in reversed(points) if p.dbm is not None)
        desc = (f"{modem}: latest {last.dbm} dBm ({last.bars}/5 bars) at "
                f"{datetime.fromtimestamp(last.at, zone):%H:%M}; over the last {hours} hours between "
                f"{min(readings)} and {max(readings)} dBm")
        desc += f"; {missing} of {len(series)} samples had no signal." if missing else "."
    else:
        desc = f"{modem}: no signal reading in the last {hours} hours."
    return line_chart(f"chart-signal-{_slug(modem)}", title=f"Signal of {modem}, last {hours} hours",
                      points=series, start=start, end=now, y_min=lo, y_max=hi, unit="dBm", x_ticks=ticks,
                      table=table, table_head=("Hour", "Lowest", "Highest"), desc=desc)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def dashboard_charts(engine: Engine, modems: Sequence[str], zone: ZoneInfo, *, days: int = 7,
                     now: float | None = None) -> DashboardCharts:
    """The last ``days`` days of sent / delivered / failed / replies, and each of
    ``modems``' signal over the last 24 hours."""
    at = datetime.now(UTC).timestamp() if now is None else now
    bounds = day_bounds(zone, days, now=datetime.fromtimestamp(at, zone))
    with read_tx(engine) as tx:
        counts = charts_db.daily_counts(tx, bounds)
        series = signals_db.signal_series(tx, modems, since=at - 24 * 3600)
    labels = [_day_label(c.start, zone) for c in counts]
    measures: list[tuple[str, str, str, list[int]]] = [
        ("sent", "Sent per day", "messages", [c.sent for c in counts]),
        ("delivered", "Delivered per day", "messages", [c.delivered for c in counts]),
        ("failed", "Failed per day", "messages", [c.failed for c in counts]),
        ("replies", "Replies received per day", "replies", [c.replies for c in counts]),
    ]
    kinds = {"sent": "accent", "delivered": "ok", "failed": "bad", "replies": "muted"}
    daily = [
        bar_chart(f"chart-{key}", title=f"{title}, last {days} days", labels=labels, values=values, unit=unit,
                  kind=kinds[key])
        for key, title, unit, values in measures
    ]
    signal = [signal_chart(m, series.get(m, []), zone=zone, now=at) for m in modems]
    return DashboardCharts(daily, signal)


def broadcast_charts(stats: Any, zone: ZoneInfo) -> list[Chart]:
    """A broadcast's sends per hour (gaps as zero hours, its last week at most) and the
    share of its finished messages delivered, sent without report yet, failed, not sent."""
    if stats is None:
        return []
    out: list[Chart] = []
    by = dict(stats.by_status)
    finished = [
        Segment("Delivered", by.get("delivered", 0), "ok"),
        Segment("Sent, no delivery report yet", by.get("sent", 0), "accent"),
        Segment("Failed", by.get("failed", 0), "bad"),
        Segment("Not sent (opted out, cancelled, expired, unknown)",
                sum(by.get(s, 0) for s in ("suppressed", "cancelled", "expired", "unknown")), "muted"),
    ]
    if any(s.value for s in finished):
        out.append(share_bar("chart-share", title="Delivered and failed", segments=finished))
    hours = dict((int(h.timestamp()), n) for h, n in stats.per_hour)
    if hours:
        last = max(hours)
        first = max(min(hours), last - (HOURS_SHOWN_MAX - 1) * 3600)
        slots = list(range(first, last + 3600, 3600))
        several_days = datetime.fromtimestamp(first, zone).date() != datetime.fromtimestamp(last, zone).date()
        fmt = "%-d %b %H:00" if several_days else "%H:00"
        labels = [datetime.fromtimestamp(h, zone).strftime(fmt) for h in slots]
        values = [hours.get(h, 0) for h in slots]
        out.append(bar_chart("chart-per-hour", title="Messages sent per hour", labels=labels, values=values,
                             unit="messages", label_every=max(1, -(-len(slots) // 6))))
    return out
