"""The recovery ladder (ManagedModem) against the pty simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from appliance.config import ModemConfig
from appliance.modem import ManagedModem, ModemDisconnected, SendOutcomeUnknown
from appliance.modem.simulator import SimulatedModem
from appliance.pdu import encode_submit
from tests.utils.wait import wait_until

FAST = dict(poll_interval=0.2, command_timeout=0.5, probe_timeout=0.4, backoff_initial=0.1,
            backoff_max=0.4, boot_timeout=2.0, resync_timeout=0.6, send_timeout=3.0)


@pytest.fixture
def managed(sim_link_dir: Path) -> Iterator[Callable[..., tuple[ManagedModem, list[str], list[Any]]]]:
    made: list[ManagedModem] = []

    def make(config: ModemConfig, **kwargs: Any) -> tuple[ManagedModem, list[str], list[Any]]:
        states: list[str] = []
        inbox: list[Any] = []
        options = {**FAST, **kwargs}
        m = ManagedModem(config, scan_patterns=[str(sim_link_dir / "ttyUSB*")],
                         on_sms=inbox.append, on_status_report=inbox.append,
                         on_state=lambda name, state: states.append(state), **options)
        made.append(m)
        m.start()
        return m, states, inbox

    yield make
    for m in made:
        m.stop(timeout=2)


def test_comes_online_sends_and_receives(sim800: SimulatedModem, managed) -> None:
    m, states, inbox = managed(ModemConfig(name="a", port=sim800.path))
    assert m.wait_online(3)
    assert states[-1] == "online" and m.online and m.port == sim800.path
    assert m.identity is not None and m.identity.imei == sim800.imei
    assert m.signal is not None and m.signal.bars == 4
    assert m.registration is not None and m.registration.registered and m.operator == "SimNet"
    assert m.send_pdu(encode_submit("+15551234567", "managed")[0]) == 0
    sim800.deliver_sms("+15557654321", "inbound")
    assert wait_until(lambda: len(inbox) == 1 and not sim800.storage)
    assert inbox[0].message.text == "inbound" and inbox[0].modem == "a"


def test_bound_by_imei_finds_the_sms_port_of_a_multiport_modem(
    sim_factory: Callable[..., SimulatedModem], sim_link_dir: Path, managed
) -> None:
    sim = sim_factory("quectel")
    m, _, _ = managed(ModemConfig(name="q", imei=sim.imei))
    assert m.wait_online(5)
    assert m.port == sim.path  # port 2 of four, the one that does SMS
    assert m.identity is not None and m.identity.iccid == sim.iccid


def test_replug_under_a_new_path_is_rebound_by_imei(sim800: SimulatedModem, managed) -> None:
    old_path = sim800.path
    m, states, _ = managed(ModemConfig(name="a", port=old_path))
    assert m.wait_online(3)
    sim800.unplug()
    assert wait_until(lambda: not m.online, 2)
    with pytest.raises(ModemDisconnected) as info:
        m.send_pdu(encode_submit("+15551234567", "while unplugged")[0])
    assert info.value.pdu_sent is False
    sim800.replug(new_path=True)
    assert sim800.path != old_path
    assert m.wait_online(5)
    assert m.port == sim800.path
    assert m.send_pdu(encode_submit("+15551234567", "rebound")[0]) == 0
    assert "offline" in states and states[-1] == "online"


def test_unplug_during_a_send_fails_it_in_under_two_seconds(
    sim_factory: Callable[..., SimulatedModem], managed
) -> None:
    sim = sim_factory("sim800", latency_s=5.0)
    m, _, _ = managed(ModemConfig(name="a", port=sim.path), send_timeout=10.0)
    assert m.wait_online(3)
    threading.Timer(0.3, sim.unplug).start()
    start = time.monotonic()
    with pytest.raises(SendOutcomeUnknown):
        m.send_pdu(encode_submit("+15551234567", "in flight")[0])
    assert time.monotonic() - start < 2.0
    assert m.state == "offline"


def test_wrong_pin_goes_to_error_and_is_never_retried(
    sim_factory: Callable[..., SimulatedModem], managed
) -> None:
    sim = sim_factory("sim800", pin="1234")
    m, states, _ = managed(ModemConfig(name="a", port=sim.path, pin=SecretStr("0000")))
    assert wait_until(lambda: m.state == "error", 3)
    assert "refused the configured PIN" in (m.last_error or "")
    time.sleep(0.5)
    assert sum(c.upper().startswith("AT+CPIN=") for c in sim.commands) == 1
    assert not m.wait_online(0.1)


def test_right_pin_unlocks(sim_factory: Callable[..., SimulatedModem], managed) -> None:
    sim = sim_factory("huawei", pin="1234")
    m, _, _ = managed(ModemConfig(name="h", port=sim.path, pin=SecretStr("1234")))
    assert m.wait_online(3)


def test_a_short_hang_is_cured_by_resync_alone(sim800: SimulatedModem, managed) -> None:
    m, states, _ = managed(ModemConfig(name="a", port=sim800.path))
    assert m.wait_online(3)
    sim800.hang(0.8)
    time.sleep(1.2)  # a poll times out meanwhile; the transport resyncs
    assert m.send_pdu(encode_submit("+15551234567", "recovered")[0]) == 0
    assert m.online and "resetting" not in states
    assert not any(c.upper() == "AT+CFUN=1,1" for c in sim800.commands)


def test_a_long_hang_goes_offline_then_back_without_flapping(
    sim800: SimulatedModem, managed
) -> None:
    m, states, _ = managed(ModemConfig(name="a", port=sim800.path), failures_before_reset=2)
    assert m.wait_online(3)
    sim800.hang(3.0)
    assert wait_until(lambda: not m.online, 4)
    assert wait_until(lambda: m.online, 8)
    assert m.send_pdu(encode_submit("+15551234567", "back")[0]) == 0
    assert len(states) < 12  # a few transitions, no tight loop


def test_repeated_timeouts_trigger_a_reset(sim800: SimulatedModem, managed) -> None:
    m, states, _ = managed(ModemConfig(name="a", port=sim800.path), failures_before_reset=1,
                           poll_interval=5.0)
    assert m.wait_online(3)
    sim800.hang(0.4)
    with pytest.raises(Exception):
        m.send_pdu(encode_submit("+15551234567", "lost")[0], timeout=0.3)
    assert wait_until(lambda: "resetting" in states and m.online, 6)
    assert any(c.upper() == "AT+CFUN=1,1" for c in sim800.commands)
    assert m.send_pdu(encode_submit("+15551234567", "after reset")[0]) >= 0
