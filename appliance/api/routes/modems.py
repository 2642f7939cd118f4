"""``/v1/modems``: each modem's state, identity, signal, counters, send budget, prepaid
balance and SIM health; ``POST /v1/modems/{name}/ussd`` runs a USSD code,
``POST /v1/modems/{name}/pause|resume`` pause and resume a SIM (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path

from appliance import audit
from appliance.api.deps import AdminKey, ReadKey, ServicesDep
from appliance.api.keys import ApiKey
from appliance.api.problems import ApiProblem, problem_responses
from appliance.api.schemas import (
    BalanceOut,
    Budget,
    ModemCounters,
    ModemIdentityOut,
    ModemOut,
    ModemsOut,
    NodeOut,
    RegistrationOut,
    SignalOut,
    UssdOut,
    UssdRequest,
)
from appliance.api.schemas_health import ModemHealthAction, ModemHealthOut, PauseRequest
from appliance.api.services import Services
from appliance.api.store import SentCounts, StoreStats
from appliance.queue.sim_health import HealthRow, SimHealth, UnknownModem, apply_now, sim_health_of

__all__ = ["router"]

router = APIRouter(prefix="/v1/modems", tags=["modems"])


def _local_midnight() -> float:
    now = datetime.now().astimezone()
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _balance_out(reading: Any, low: float | None) -> BalanceOut | None:
    if reading is None:
        return None
    return BalanceOut(amount=reading.amount, text=reading.text, at=datetime.fromtimestamp(reading.at, UTC),
                      low=None if low is None or reading.amount is None else reading.amount < low)


def _modem_out(modem: Any, counts: SentCounts | None, budget: Any, node: str | None = None,
               balance: Any = None, health: Any = None) -> ModemOut:
    identity = getattr(modem, "identity", None)
    signal = getattr(modem, "signal", None)
    registration = getattr(modem, "registration", None)
    return ModemOut(
        name=modem.name,
        state=modem.state,
        online=modem.online,
        port=getattr(modem, "port", None),
        identity=None if identity is None else ModemIdentityOut(
            imei=identity.imei, iccid=identity.iccid, imsi=identity.imsi, model=identity.model,
            manufacturer=identity.manufacturer, firmware=identity.firmware,
        ),
        signal=None if signal is None else SignalOut(rssi=signal.rssi, dbm=signal.dbm, bars=signal.bars),
        registration=None if registration is None else RegistrationOut(
            status=registration.status, technology=registration.technology, lac=registration.lac,
            cell_id=registration.cell_id,
        ),
        operator=getattr(modem, "operator", None),
        last_error=getattr(modem, "last_error", None),
        counters=ModemCounters(
            parts_sent_today=counts.since if counts else 0,
            parts_sent_total=counts.total if counts else 0,
        ),
        budget=None if budget is None else Budget.of(budget),
        node=node,
        balance=_balance_out(balance, getattr(getattr(modem, "config", None), "balance_low", None)),
        health=ModemHealthOut.of(health),
    )


def _remote_modem_out(row: Any, node_state: str, counts: SentCounts | None, balance: Any = None,
                      health: Any = None) -> ModemOut:
    """A modem another node drives, as the database last heard of it."""
    online = node_state == "alive" and row.state == "online"
    return ModemOut(
        name=row.name, state=row.state if node_state == "alive" and row.state else "offline", online=online,
        port=None, identity=ModemIdentityOut(imei=row.imei, iccid=row.iccid, model=row.model),
        signal=None, registration=None, operator=None,
        last_error=None if node_state == "alive" else f"its node {row.node} is {node_state}",
        counters=ModemCounters(parts_sent_today=counts.since if counts else 0,
                               parts_sent_total=counts.total if counts else 0),
        budget=None, node=row.node, balance=_balance_out(balance, None), health=ModemHealthOut.of(health),
    )


@router.get(
    "",
    response_model=ModemsOut,
    summary="Modems: state, signal, operator, identity, counters, budget left",
    responses=problem_responses(401, 403),
)
def list_modems(
    _key: ReadKey,
    services: ServicesDep,
) -> ModemsOut:
    counts = StoreStats(services.queue.engine).sent_counts(since=_local_midnight())
    budgets = services.dispatcher.budgets()
    me = services.settings.node.name
    balances = _balances(services)
    health = sim_health_of(services).states()
    local = [_modem_out(m, counts.get(m.name), budgets.get(m.name), me, balances.get(m.name), health.get(m.name))
             for m in list(services.modems)]
    nodes = services.queue.nodes()
    state = {n.name: n.state for n in nodes}
    names = {m.name for m in local}
    remote = [
        _remote_modem_out(row, state.get(row.node, "silent"), counts.get(row.name), balances.get(row.name),
                          health.get(row.name))
        for row in services.queue.modems() if row.node and row.node != me and row.name not in names
    ]
    return ModemsOut(modems=local + remote, nodes=[
        NodeOut(name=n.name, host=n.host, state=n.state, heartbeat_age_s=round(n.silent_s, 1), lease_s=n.lease_s,
                version=n.version, api_url=n.api_url, this=n.name == me, recovered_by=n.recovered_by)
        for n in nodes
    ])


def _balances(services: Services) -> dict[str, Any]:
    """The newest balance reading of each modem (none when the daemon keeps no balances)."""
    balances = getattr(services, "balances", None)
    return balances.latest() if balances is not None else {}


@router.post(
    "/{name}/ussd",
    response_model=UssdOut,
    summary="Run a USSD code (e.g. *100#, the prepaid balance) through a modem",
    description="The answer comes back decoded. When the code is the modem's balance_ussd the answer "
                "is also kept as its balance. 409 while the modem is offline; 502 when the modem or the "
                "network gave no answer.",
    responses=problem_responses(401, 403, 404, 409, 422, 502),
)
def run_ussd(
    body: UssdRequest,
    _key: AdminKey,
    services: ServicesDep,
    name: str = Path(max_length=64),
) -> UssdOut:
    from appliance.modem.errors import ModemDisconnected, ModemError, UssdError

    modem = next((m for m in list(services.modems) if m.name == name), None)
    if modem is None:
        raise ApiProblem(404, "not-found", f"no modem named {name!r} on this appliance")
    if not modem.online:
        raise ApiProblem(409, "invalid-state", f"modem {name} is {modem.state}; try again when it is online")
    status = 0
    try:
        text = modem.ussd(body.code)
    except UssdError as exc:
        if not exc.text:
            raise ApiProblem(502, "modem-error", exc.message) from None
        text, status = exc.text, exc.status
    except ModemDisconnected as exc:
        raise ApiProblem(409, "invalid-state", f"modem {name} went offline: {exc.message}") from None
    except ModemError as exc:
        raise ApiProblem(502, "modem-error", exc.message) from None
    balances = getattr(services, "balances", None)
    config = getattr(modem, "config", None)
    if balances is not None and config is not None and config.balance_ussd == body.code:
        balances.record(modem, text)
    return UssdOut(modem=name, code=body.code, text=text, status=status)


def _known(services: Services, name: str) -> SimHealth:
    health = sim_health_of(services)
    local = [m.name for m in list(services.modems)] + [m.name for m in services.settings.modems]
    try:
        health.check_known(name, local)
    except UnknownModem as exc:
        raise ApiProblem(404, "not-found", str(exc)) from None
    return health


@router.post(
    "/{name}/resume",
    response_model=ModemHealthAction,
    summary="Resume a SIM paused by its health check (or by an admin)",
    description="The SIM takes work again at once (on whichever node drives it, within a couple of seconds). "
                "Idempotent: a SIM that is not paused answers 200 with changed=false. 404 for an unknown modem.",
    responses=problem_responses(401, 403, 404, 422),
)
def resume_modem(
    key: AdminKey,
    services: ServicesDep,
    name: str = Path(min_length=1, max_length=64),
) -> ModemHealthAction:
    health = _known(services, name)
    row = health.resume(name, by=f"admin:{key.name}")
    return _acted(services, key, name, audit.Action.MODEM_RESUME, row or health.states([name]).get(name),
                  changed=row is not None)


@router.post(
    "/{name}/pause",
    response_model=ModemHealthAction,
    summary="Pause a SIM: no new work until an admin resumes it",
    description="Its queued work goes to the other SIMs (a message with a part already sent through it "
                "waits for it). No probe resumes an admin's pause. Idempotent: a SIM already paused answers "
                "200 with changed=false and keeps its reason. 404 for an unknown modem.",
    responses=problem_responses(401, 403, 404, 422),
)
def pause_modem(
    key: AdminKey,
    services: ServicesDep,
    name: str = Path(min_length=1, max_length=64),
    body: PauseRequest | None = None,
) -> ModemHealthAction:
    health = _known(services, name)
    row, changed = health.pause(name, by=f"admin:{key.name}", reason=body.reason if body else None)
    return _acted(services, key, name, audit.Action.MODEM_PAUSE, row, changed=changed)


def _acted(services: Services, key: ApiKey, name: str, action: audit.Action, row: HealthRow, *,
           changed: bool) -> ModemHealthAction:
    """An admin's pause or resume: applied on this node at once and audited when it changed something."""
    if changed:
        apply_now(services)
        audit.record(services.queue.engine, audit.Actor.key(key.name), action, name, {"reason": row.reason})
    return ModemHealthAction(modem=name, changed=changed, health=ModemHealthOut.of(row))
