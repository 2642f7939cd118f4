"""Prepaid balances read by USSD (table ``modem_balances``) and the ``modem.balance_low`` event."""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.db.engine import Tx

__all__ = ["BALANCE_LOW", "BalanceView", "add_low_event", "latest", "record"]

BALANCE_LOW = "modem.balance_low"
"""The ``events`` kind of a balance found below its modem's ``balance_low``."""


@dataclass(frozen=True, slots=True)
class BalanceView:
    """One reading: ``amount`` is None when the answer held no number."""

    modem: str
    iccid: str | None
    amount: float | None
    text: str
    at: float


def record(tx: Tx, modem: str, *, iccid: str | None, amount: float | None, text: str, at: float) -> None:
    """Keep one reading."""
    tx.exec_driver_sql(
        "INSERT INTO modem_balances (modem, iccid, amount, text, at) VALUES (?, ?, ?, ?, ?)",
        (modem, iccid, amount, text, at),
    )


def latest(tx: Tx) -> dict[str, BalanceView]:
    """Each modem's newest reading."""
    rows = tx.exec_driver_sql(
        "SELECT b.modem, b.iccid, b.amount, b.text, b.at FROM modem_balances b "
        "JOIN (SELECT modem, MAX(id) AS id FROM modem_balances GROUP BY modem) n ON n.id = b.id"
    ).all()
    return {r["modem"]: BalanceView(r["modem"], r["iccid"], r["amount"], r["text"], r["at"]) for r in rows}


def add_low_event(tx: Tx, modem: str, *, amount: float, low: float, text: str, at: float) -> None:
    """Note a low balance in ``events`` (no message; the webhook outbox sends it on)."""
    tx.exec_driver_sql(
        "INSERT INTO events (at, kind, message_id, modem, detail) VALUES (?, ?, NULL, ?, ?)",
        (at, BALANCE_LOW, modem, json.dumps({"amount": amount, "low": low, "text": text})),
    )
