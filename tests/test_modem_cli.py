"""Technician verbs (modems scan, diag, at, send, ussd) against simulated modems."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.cli import app
from appliance.modem.simulator import SimulatedModem

runner = CliRunner()


def one_error_line(stderr: str) -> str:
    text = " ".join(stderr.split())
    assert text.startswith("error: ")
    assert "Traceback" not in stderr
    return text


@pytest.mark.parametrize("persona", ["sim800", "huawei", "quectel"])
def test_diag_json(persona: str, sim_factory: Callable[..., SimulatedModem]) -> None:
    sim = sim_factory(persona)
    result = runner.invoke(app, ["diag", sim.path, "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["sim_state"] == "READY"
    assert doc["identity"]["imei"] == sim.imei and doc["identity"]["iccid"] == sim.iccid
    assert doc["signal"] == {"rssi": 20, "ber": 0, "dbm": -73, "bars": 4}
    assert doc["registration"]["registered"] is True
    assert doc["operator"] == "SimNet" and doc["smsc"] == "+15550000000"
    assert doc["storage"][0]["memory"] == "SM"


def test_diag_plain_text(sim800: SimulatedModem) -> None:
    result = runner.invoke(app, ["diag", sim800.path])
    assert result.exit_code == 0, result.stderr
    assert "-73 dBm, 4/5 bars" in result.stdout and sim800.imei in result.stdout


def test_at_one_shot_prints_each_response(sim800: SimulatedModem, tmp_path: Path) -> None:
    log = tmp_path / "session.log"
    result = runner.invoke(app, ["at", sim800.path, "ATE0", "+CSQ", "AT+CGSN", "--log", str(log)])
    assert result.exit_code == 0, result.stderr
    assert "+CSQ: 20,0" in result.stdout and sim800.imei in result.stdout
    assert "-> AT+CSQ" in log.read_text()
    bad = runner.invoke(app, ["at", sim800.path, "AT+NOSUCH"])
    assert bad.exit_code == 1 and "ERROR" in bad.stdout


def test_at_console_cmgs_helper_and_urcs(sim800: SimulatedModem) -> None:
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    sim800.deliver_sms("+15557654321", "hi")  # +CMTI arrives while the console is open
    result = runner.invoke(app, ["at", sim800.path], input=f"ATE0\n/cmgs {pdu}\n/quit\n")
    assert result.exit_code == 0, result.stderr
    assert "+CMGS: 0" in result.stdout
    assert [r.text for r in sim800.sent] == ["hellohello"]


def test_send_prints_parts_and_mrs(sim800: SimulatedModem) -> None:
    result = runner.invoke(app, ["send", "--port", sim800.path, "+15551234567", "y" * 200])
    assert result.exit_code == 0, result.stderr
    assert [(r.part, r.total, r.mr) for r in sim800.sent] == [(1, 2, 0), (2, 2, 1)]
    assert "sent 2 part(s)" in result.stdout


def test_send_without_network_is_one_clear_line(sim800: SimulatedModem) -> None:
    sim800.set_network(False)
    result = runner.invoke(app, ["send", "--port", sim800.path, "+15551234567", "x"])
    assert result.exit_code != 0
    assert "no network" in one_error_line(result.stderr)
    assert sim800.sent == []


def test_ussd(quectel: SimulatedModem) -> None:
    result = runner.invoke(app, ["ussd", quectel.path, "*100#"])
    assert result.exit_code == 0, result.stderr
    assert "Ihr Guthaben beträgt 5,00 €" in result.stdout


def test_scan_lists_sms_ports(sim_factory: Callable[..., SimulatedModem], sim_link_dir: Path) -> None:
    a, b = sim_factory("sim800"), sim_factory("huawei")
    args = ["modems", "scan", "--pattern", str(sim_link_dir / "ttyUSB*"), "--timeout", "0.4"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    found = {p["path"]: p for p in json.loads(result.stdout)}
    sms = {p["identity"]["imei"]: path for path, p in found.items() if p["sms_capable"]}
    assert sms == {a.imei: a.path, b.imei: b.path}  # Huawei: only its modem port does SMS
    assert found[a.path]["identity"]["iccid"] == a.iccid
    assert b.paths[1] not in found  # the silent diagnostics port is not listed
    assert found[b.paths[2]]["sms_capable"] is False  # PCUI answers identity only
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and table.stdout.count("yes") == 2


def test_missing_port_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diag", str(tmp_path / "ttyUSB9")])
    assert result.exit_code != 0
    assert "not found" in one_error_line(result.stderr)


def test_busy_port_is_one_line(sim800: SimulatedModem) -> None:
    from appliance.modem.transport import ATTransport

    with ATTransport(sim800.path):
        result = runner.invoke(app, ["at", sim800.path, "AT"])
    assert result.exit_code != 0 and "busy" in one_error_line(result.stderr)


def test_pin_needed_and_wrong_pin(sim_factory: Callable[..., SimulatedModem]) -> None:
    sim = sim_factory("sim800", pin="4321")
    needed = runner.invoke(app, ["diag", sim.path])
    assert needed.exit_code != 0 and "--pin" in one_error_line(needed.stderr)
    wrong = runner.invoke(app, ["diag", sim.path, "--pin", "0000"])
    assert wrong.exit_code != 0 and "refused" in one_error_line(wrong.stderr)
    right = runner.invoke(app, ["diag", sim.path, "--pin", "4321", "--json"])
    assert right.exit_code == 0 and json.loads(right.stdout)["sim_state"] == "READY"


def test_nothing_answering_is_one_line(sim_factory: Callable[..., SimulatedModem]) -> None:
    sim = sim_factory("quectel")
    silent = sim.paths[0]  # the DM port never answers
    result = runner.invoke(app, ["diag", silent, "--timeout", "0.5"])
    assert result.exit_code != 0 and "nothing answers AT" in one_error_line(result.stderr)
