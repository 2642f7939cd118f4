"""Each modem's signal over time (table ``signal_samples``): samples written by the node
that drives the modem, read for the dashboard's chart, pruned after a week in short
batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.db.engine import Tx

__all__ = ["SignalPoint", "SignalSampleIn", "last_sample_at", "prune_signal", "record_samples", "signal_series"]


@dataclass(frozen=True, slots=True)
class SignalSampleIn:
    """One sample to store: ``dbm``/``bars`` None when the modem had no signal or was offline."""

    modem: str
    at: float
    rssi: int | None
    dbm: int | None
    bars: int | None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class SignalPoint:
    """One stored sample as the chart reads it."""

    at: float
    dbm: int | None
    bars: int | None


def record_samples(tx: Tx, samples: Sequence[SignalSampleIn]) -> None:
    """Store ``samples`` (one statement per batch)."""
    if not samples:
        return
    tx.exec_driver_sql(
        "INSERT INTO signal_samples (modem, node, at, rssi, dbm, bars) VALUES (?, ?, ?, ?, ?, ?)",
        [(s.modem, s.node, s.at, s.rssi, s.dbm, s.bars) for s in samples],
    )


def last_sample_at(tx: Tx, modem: str) -> float | None:
    """When ``modem`` was last sampled (None: never); a read of ``ix_signal_samples_modem_at``."""
    at = tx.exec_driver_sql("SELECT MAX(at) AS at FROM signal_samples WHERE modem = ?", (modem,)).first()["at"]
    return None if at is None else float(at)


def signal_series(tx: Tx, modems: Sequence[str], *, since: float) -> dict[str, list[SignalPoint]]:
    """Each of ``modems``' samples since ``since``, oldest first (each modem a range read of
    ``ix_signal_samples_modem_at``); a modem never sampled maps to an empty list."""
    out: dict[str, list[SignalPoint]] = {}
    for modem in modems:
        rows = tx.exec_driver_sql(
            "SELECT at, dbm, bars FROM signal_samples WHERE modem = ? AND at >= ? ORDER BY at",
            (modem, since),
        ).all()
        out[modem] = [SignalPoint(float(r["at"]), r["dbm"], r["bars"]) for r in rows]
    return out


def prune_signal(tx: Tx, before: float, *, limit: int) -> int:
    """Delete up to ``limit`` samples older than ``before``, oldest first
    (``ix_signal_samples_at``)."""
    ids = [int(r["id"]) for r in tx.exec_driver_sql(
        "SELECT id FROM signal_samples WHERE at < ? ORDER BY at LIMIT ?", (before, limit)
    )]
    if not ids:
        return 0
    marks = ", ".join("?" * len(ids))
    return tx.exec_driver_sql(f"DELETE FROM signal_samples WHERE id IN ({marks})", tuple(ids)).rowcount
