"""Issue 15: ``[discovery] patterns`` — scan and IMEI binding under a custom directory."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from appliance.cli import app
from appliance.config import ConfigError, Settings, load_settings
from appliance.modem.discovery import DEFAULT_PATTERNS
from appliance.modem.simulator import SimulatedModem
from tests.utils.wait import wait_until

runner = CliRunner()


def test_default_patterns_are_the_discovery_defaults() -> None:
    assert tuple(Settings().discovery.patterns) == DEFAULT_PATTERNS


@pytest.mark.parametrize("bad", ["patterns = []", 'patterns = [""]', 'patterns = "/dev/ttyUSB*"',
                                 "pattern = ['/dev/x*']"])
def test_bad_patterns_name_the_key(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(f"[discovery]\n{bad}\n")
    with pytest.raises(ConfigError, match="discovery"):
        load_settings(path)


def test_scan_uses_the_configured_patterns(tmp_path: Path) -> None:
    field = tmp_path / "serial"
    sim = SimulatedModem("sim800", link_dir=field)
    sim.start()
    try:
        config = tmp_path / "appliance.toml"
        config.write_text(f'[discovery]\npatterns = ["{field}/ttyUSB*"]\n')
        result = runner.invoke(app, ["modems", "scan", "--config", str(config), "--timeout", "0.4",
                                     "--json"])
        assert result.exit_code == 0, result.stderr
        found = [p for p in json.loads(result.stdout) if p["sms_capable"]]
        assert [(p["path"], p["identity"]["imei"]) for p in found] == [(sim.path, sim.imei)]
        # --pattern still wins over the settings
        other = runner.invoke(app, ["modems", "scan", "--config", str(config), "--timeout", "0.4",
                                    "--pattern", str(tmp_path / "nothing*")])
        assert other.exit_code == 0 and "no modem answered" in other.stdout
    finally:
        sim.stop()


def test_daemon_rebinds_by_imei_under_a_custom_directory(tmp_path: Path, live_server_factory) -> None:
    field = tmp_path / "serial"
    sim = SimulatedModem("huawei", link_dir=field)
    sim.start()
    try:
        server = live_server_factory(simulate=0, settings={
            "discovery": {"patterns": [f"{field}/ttyUSB*"]},
            "modems": [{"name": "field", "imei": sim.imei, "min_interval_s": 0}],
        })
        modem = server.app.modems[0]
        assert modem.online and modem.port == sim.path
        first = sim.path
        sim.unplug()
        assert wait_until(lambda: not modem.online)
        sim.replug(new_path=True)
        assert sim.path != first
        assert wait_until(lambda: modem.online and modem.port == sim.path)
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        r = httpx.post(f"{server.url}/v1/messages", headers=headers,
                       json={"to": "+14155550100", "body": "after replug"})
        assert r.status_code in (201, 202), r.text
        assert wait_until(lambda: any(s.text == "after replug" for s in sim.sent))
    finally:
        sim.stop()
