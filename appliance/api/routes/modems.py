"""``/v1/modems``: each modem's state, identity, signal, counters and send budget."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from appliance.api.auth import get_services, require
from appliance.api.keys import ApiKey
from appliance.api.problems import problem_responses
from appliance.api.schemas import (
    Budget,
    ModemCounters,
    ModemIdentityOut,
    ModemOut,
    ModemsOut,
    RegistrationOut,
    SignalOut,
)
from appliance.api.services import Services
from appliance.api.store import SentCounts, StoreStats

__all__ = ["router"]

router = APIRouter(prefix="/v1/modems", tags=["modems"])


def _local_midnight() -> float:
    now = datetime.now().astimezone()
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _modem_out(modem: Any, counts: SentCounts | None, budget: Any) -> ModemOut:
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
    )


@router.get(
    "",
    response_model=ModemsOut,
    summary="Modems: state, signal, operator, identity, counters, budget left",
    responses=problem_responses(401, 403),
)
def list_modems(
    _key: Annotated[ApiKey, Depends(require("read"))],
    services: Annotated[Services, Depends(get_services)],
) -> ModemsOut:
    counts = StoreStats(services.queue.engine).sent_counts(since=_local_midnight())
    budgets = services.dispatcher.budgets()
    return ModemsOut(modems=[
        _modem_out(m, counts.get(m.name), budgets.get(m.name)) for m in list(services.modems)
    ])
