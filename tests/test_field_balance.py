"""Issue 15: USSD through the running modem and the prepaid balance (schedule, /v1/modems,
/metrics, the ``modem.balance_low`` webhook, the dashboard), end to end through the pty
simulator and a live appliance, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.balance import parse_amount
from appliance.config import ConfigError, load_settings
from appliance.db.engine import read_tx
from appliance.db.messages import list_events
from appliance.modem.simulator import SimulatedModem
from tests.utils.field import HookReceiver, wait_until

SIM800_BALANCE = "Your balance is 12.50 USD. Valid until 31/12."


@pytest.fixture
def field(tmp_path: Path, db_url: str, live_server_factory) -> Iterator[tuple[Any, SimulatedModem, HookReceiver]]:
    sim = SimulatedModem("sim800", link_dir=tmp_path / "serial")
    sim.start()
    hooks = HookReceiver()
    try:
        server = live_server_factory(simulate=0, settings={
            "appliance": {"database_url": db_url},
            "modems": [{"name": "field", "imei": sim.imei, "min_interval_s": 0,
                        "balance_ussd": "*100#", "balance_low": 10}],
            "discovery": {"patterns": [str(tmp_path / "serial" / "ttyUSB*")]},
            "webhooks": [{"url": hooks.url, "events": ["modem.balance_low"]}],
        })
        yield server, sim, hooks
    finally:
        hooks.close()
        sim.stop()


def _balance(server: Any) -> dict[str, Any] | None:
    r = httpx.get(f"{server.url}/v1/modems", headers={"Authorization": f"Bearer {server.admin_key}"})
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["modems"] if m["name"] == "field")["balance"]


def _low_events(server: Any) -> list[Any]:
    with read_tx(server.app.queue.engine) as tx:
        return [e for e in list_events(tx) if e.kind == "modem.balance_low"]


def test_balance_is_read_at_start_and_shown(field) -> None:
    server, sim, hooks = field
    balance = wait_until(lambda: _balance(server))
    assert balance["amount"] == 12.5 and balance["text"] == SIM800_BALANCE and balance["low"] is False
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.admin_key}"}).text
    assert 'appliance_modem_balance{modem="field"} 12.5' in metrics
    assert _low_events(server) == []


def test_ussd_endpoint_low_balance_raises_one_event(field, web_client) -> None:
    server, sim, hooks = field
    wait_until(lambda: _balance(server))
    sim.set_ussd_reply("*100#", "Ihr Guthaben: 3,20 EUR")
    with server.client() as c:
        r = c.post("/v1/modems/field/ussd", json={"code": "*100#"})
        assert r.status_code == 200, r.text
        assert r.json() == {"modem": "field", "code": "*100#", "text": "Ihr Guthaben: 3,20 EUR", "status": 0}
        balance = _balance(server)
        assert balance["amount"] == 3.2 and balance["low"] is True
        event = wait_until(lambda: hooks.of_type("modem.balance_low"))
        assert event[0]["data"]["modem"] == "field" and event[0]["data"]["amount"] == 3.2
        assert event[0]["data"]["low"] == 10
        dashboard = web_client(server).get("/dashboard/live").text
        assert '<th scope="col">Balance</th>' in dashboard and "3.20" in dashboard
        assert 'state-bad">low<' in dashboard and "Ihr Guthaben: 3,20 EUR" in dashboard
        # still low: kept, but no second event; back up and down again: a new one
        assert c.post("/v1/modems/field/ussd", json={"code": "*100#"}).status_code == 200
        assert len(_low_events(server)) == 1
        sim.set_ussd_reply("*100#", "Balance 50")
        assert c.post("/v1/modems/field/ussd", json={"code": "*100#"}).json()["text"] == "Balance 50"
        assert _balance(server)["low"] is False
        sim.set_ussd_reply("*100#", "Balance 1")
        c.post("/v1/modems/field/ussd", json={"code": "*100#"})
        assert len(_low_events(server)) == 2
        # another code is answered but not taken for the balance
        sim.set_ussd_reply("*111#", "Menu: 1 Data 2 Voice")
        r = c.post("/v1/modems/field/ussd", json={"code": "*111#"})
        assert r.status_code == 200 and r.json()["text"] == "Menu: 1 Data 2 Voice"
        assert _balance(server)["text"] == "Balance 1"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ussd_errors(field) -> None:
    server, sim, hooks = field
    with server.client() as c:
        bad = c.post("/v1/modems/field/ussd", json={"code": "balance please"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "code"
        assert c.post("/v1/modems/field/ussd", json={}).json()["errors"][0]["field"] == "code"
        assert c.post("/v1/modems/field/ussd", json={"code": "*100#", "x": 1}).status_code == 422
        assert c.post("/v1/modems/field/ussd", json={"code": "*1" * 20}).status_code == 422
        missing = c.post("/v1/modems/nope/ussd", json={"code": "*100#"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        # the network does not know the code: +CUSD: 4, no text
        unknown = c.post("/v1/modems/field/ussd", json={"code": "*999#"})
        assert unknown.status_code == 502 and "*999#" in unknown.json()["detail"]
        # a release line with text: the text, status 2
        sim.script_reply('AT+CUSD=1,"*101#",15', ["\r\nOK\r\n", 0.05, '\r\n+CUSD: 2,"Balance 4.00",15\r\n'])
        released = c.post("/v1/modems/field/ussd", json={"code": "*101#"})
        assert released.status_code == 200, released.text
        assert released.json()["status"] == 2 and released.json()["text"] == "Balance 4.00"
    _, read_key = server.app.keys.create("reader", ["read"])
    r = httpx.post(f"{server.url}/v1/modems/field/ussd", json={"code": "*100#"},
                   headers={"Authorization": f"Bearer {read_key}"})
    assert r.status_code == 403
    sim.unplug()
    modem = server.app.modems[0]
    assert wait_until(lambda: not modem.online)
    with server.client() as c:
        offline = c.post("/v1/modems/field/ussd", json={"code": "*100#"})
        assert offline.status_code == 409 and "field" in offline.json()["detail"]


@pytest.mark.parametrize(("text", "amount"), [
    ("Your balance is 12.50 USD.", 12.5), ("Guthaben 5,00 €", 5.0), ("Balance: 7", 7.0),
    ("no number here", None), ("", None),
])
def test_parse_amount(text: str, amount: float | None) -> None:
    assert parse_amount(text, r"([0-9]+(?:[.,][0-9]+)?)") == amount


def test_custom_pattern_takes_the_right_number() -> None:
    assert parse_amount("Bonus 100 MB. Main balance: 4.75", r"balance: ([0-9.]+)") == 4.75


@pytest.mark.parametrize("bad", ['balance_pattern = "no group"', 'balance_pattern = "(["',
                                 'balance_ussd = "*100#; rm"', "balance_every_h = 0",
                                 'balance_low = "lots"'])
def test_bad_balance_settings_name_the_key(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[[modems]]\nname = "a"\nport = "/dev/ttyUSB0"\n{bad}\n')
    with pytest.raises(ConfigError, match=bad.split(" ")[0]):
        load_settings(path)
