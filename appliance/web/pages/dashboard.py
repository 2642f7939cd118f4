"""The dashboard: modems (state, signal, budget left), queue depth, today's counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from appliance.api.deps import ServicesDep, SignedIn
from appliance.api.services import Services
from appliance.db import stats as stats_db
from appliance.db.engine import read_tx
from appliance.db.stats import TodayCounts
from appliance.web.chart_data import dashboard_charts
from appliance.queue.sim_health import sim_health_of
from appliance.web.render import page

__all__ = ["ModemRow", "local_midnight", "modem_rows", "router", "today_counts"]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class ModemRow:
    """One modem as the pages show it."""

    name: str
    state: str
    online: bool
    port: str | None
    operator: str | None
    dbm: int | None
    bars: int | None
    technology: str | None
    last_error: str | None
    minute_left: int | None
    hour_left: int | None
    day_left: int | None
    node: str | None = None  # the appliance driving it, when several share the database
    balance_text: str | None = None  # the last prepaid balance answer (balance_ussd)
    balance_amount: float | None = None
    balance_low: bool = False
    paused: bool = False  # SIM health ([health.sim]): no new work until a probe or an admin resumes it
    pause_reason: str | None = None
    probe_at: float | None = None  # when the probe that may resume it is due (None: an admin must)


def modem_rows(services: Services, nodes: list[Any] | None = None) -> list[ModemRow]:
    """This appliance's modems, then (with ``nodes``) the ones other nodes drive, as the
    shared database last heard of them."""
    budgets = services.dispatcher.budgets()
    balances_service: Any = getattr(services, "balances", None)
    balances = balances_service.latest() if balances_service is not None else {}
    health = sim_health_of(services).paused()
    rows = []
    for m in list(services.modems):
        balance: Any = balances.get(m.name)
        low: Any = getattr(getattr(m, "config", None), "balance_low", None)
        signal: Any = getattr(m, "signal", None)
        registration: Any = getattr(m, "registration", None)
        budget: Any = budgets.get(m.name)
        rows.append(ModemRow(
            name=m.name, state=m.state, online=m.online, port=getattr(m, "port", None),
            operator=getattr(m, "operator", None),
            dbm=signal.dbm if signal else None, bars=signal.bars if signal else None,
            technology=registration.technology if registration else None,
            last_error=getattr(m, "last_error", None),
            minute_left=budget.minute_left if budget else None,
            hour_left=budget.hour_left if budget else None,
            day_left=budget.day_left if budget else None,
            node=services.settings.node.name if nodes else None,
            balance_text=balance.text if balance else None,
            balance_amount=balance.amount if balance else None,
            balance_low=bool(balance and balance.amount is not None and low is not None and balance.amount < low),
            **_pause_fields(health.get(m.name)),
        ))
    if nodes:
        state = {n.name: n.state for n in nodes}
        local = {r.name for r in rows}
        for remote in services.queue.modems():
            if not remote.node or remote.node == services.settings.node.name or remote.name in local:
                continue
            alive = state.get(remote.node) == "alive"
            rows.append(ModemRow(
                name=remote.name, state=(remote.state or "unknown") if alive else "offline",
                online=alive and remote.state == "online", port=None, operator=None, dbm=None, bars=None,
                technology=None, last_error=None if alive else f"its appliance {remote.node} is {state.get(remote.node, 'silent')}",
                minute_left=None, hour_left=None, day_left=None, node=remote.node,
                **_pause_fields(health.get(remote.name)),
            ))
    return rows


def _pause_fields(row: Any) -> dict[str, Any]:
    if row is None:
        return {}
    return {"paused": True, "pause_reason": row.reason, "probe_at": row.probe_at}


def local_midnight(zone: ZoneInfo) -> float:
    now = datetime.now(zone)
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def today_counts(services: Services, since: float) -> TodayCounts:
    """Messages waiting now, and sent / delivered / failed / suppressed / received since
    ``since``."""
    with read_tx(services.queue.engine) as tx:
        return stats_db.today_counts(tx, since=since)


def _dashboard(request: Request, services: Services, template: str, *, charts: bool = False) -> HTMLResponse:
    zone = ZoneInfo(services.settings.broadcasts.timezone)
    nodes = services.queue.nodes()
    several = [n for n in nodes if n.state != "stopped" or n.name == services.settings.node.name]
    shown = several if len(several) > 1 else []
    modems = modem_rows(services, shown)
    # The charts are drawn with the page, not with its five-second refresh.
    drawn = dashboard_charts(services.queue.engine, [m.name for m in modems], zone) if charts else None
    return page(request, template, title="Dashboard", modems=modems,
                counts=today_counts(services, local_midnight(zone)), nodes=shown,
                this_node=services.settings.node.name, charts=drawn)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, _session: SignedIn,
              services: ServicesDep) -> HTMLResponse:
    return _dashboard(request, services, "dashboard.html", charts=True)


@router.get("/dashboard/live", response_class=HTMLResponse)
def dashboard_live(request: Request, _session: SignedIn,
                   services: ServicesDep) -> HTMLResponse:
    """The counts and the modems table alone, for the page to refresh itself."""
    return _dashboard(request, services, "_dashboard_live.html")
