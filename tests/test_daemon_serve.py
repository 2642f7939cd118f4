"""`appliance serve` as a real subprocess: start, serve, config errors, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

APPLIANCE = [sys.executable, "-m", "appliance.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{tmp_path / 'appliance.db'}"
    env["APPLIANCE_SIMULATOR__LATENCY_S"] = "0"
    return env


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).json()
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer /healthz")


def test_wrong_config_fails_at_start_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text("[api]\nport = 'eighty'\n")
    proc = subprocess.run([*APPLIANCE, "serve", "--config", str(config)], env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "api.port" in lines[0] and str(config) in lines[0]


def test_serve_with_a_missing_modem_still_serves_and_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(
        '[[modems]]\nname = "absent"\nport = "/dev/ttyUSB-not-there"\n'
    )
    env = env_for(tmp_path)
    key = subprocess.run([*APPLIANCE, "keys", "create", "t", "--scope", "admin", "--config", str(config)],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([*APPLIANCE, "serve", "--config", str(config), "--simulate", "1", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 15
        while True:
            modems = {m["name"]: m for m in httpx.get(f"{url}/v1/modems", headers=headers).json()["modems"]}
            if modems["sim1"]["online"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert modems["sim1"]["online"] is True
        assert modems["absent"]["online"] is False
        r = httpx.post(f"{url}/v1/messages", headers=headers, json={"to": "+14155550100", "body": "hi"})
        assert r.status_code == 202, r.text
        mid = r.json()["messages"][0]["id"]
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/v1/messages/{mid}", headers=headers).json()["status"] != "sent":
            assert time.monotonic() < deadline, "the message was not sent by the online modem"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("serve did not stop within 30 s of SIGTERM")
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert "SMS appliance API on" in (proc.stdout.read() if proc.stdout else "")
