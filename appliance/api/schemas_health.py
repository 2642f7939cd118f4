"""Schemas of SIM health (``[health.sim]``): a modem's pause state and the admin's pause
and resume (``POST /v1/modems/{name}/pause|resume``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appliance.queue.sim_health import MAX_REASON

__all__ = ["ModemHealthAction", "ModemHealthOut", "PauseRequest"]


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class ModemHealthOut(BaseModel):
    """Whether the SIM is paused by its health check (or an admin), why and until when."""

    paused: bool
    reason: str | None = Field(default=None, description="Why it was (last) paused.")
    code: int | None = Field(default=None, description="The +CMS ERROR code that decided it, if one did.")
    by: str | None = Field(default=None, description="'health check' or who paused it (admin:<key>, web:<user>, cli).")
    since: datetime | None = Field(default=None, description="When it was paused (null when not paused).")
    probe_at: datetime | None = Field(
        default=None, description="When the probe that may resume it is due (null: only an admin resumes it).")
    strikes: int = Field(default=0, description="Pauses in a row; each doubles the cool-down.")
    probation: bool = Field(default=False, description="Resumed by a probe: its next send decides.")
    resumed_by: str | None = None
    resumed_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> ModemHealthOut:
        """From a :class:`appliance.db.sim_health.HealthRow` (None: never paused)."""
        if row is None:
            return cls(paused=False)
        return cls(
            paused=row.paused, reason=row.reason, code=row.code, by=row.paused_by,
            since=_at(row.paused_at) if row.paused else None, probe_at=_at(row.probe_at) if row.paused else None,
            strikes=row.strikes, probation=row.probation, resumed_by=row.resumed_by, resumed_at=_at(row.resumed_at),
        )


class ModemHealthAction(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "modem": "sim-a", "changed": True,
        "health": {"paused": False, "reason": "5 sends failed in a row; the last: +CMS ERROR 42", "code": 42,
                   "by": "health check", "since": None, "probe_at": None, "strikes": 0, "probation": False,
                   "resumed_by": "admin:ops", "resumed_at": "2030-01-06T08:00:04Z"},
    }]})

    modem: str
    changed: bool = Field(description="False when it already was as asked (the call is idempotent).")
    health: ModemHealthOut


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON,
                               description="Shown with the pause; default 'paused by <who>'.")
