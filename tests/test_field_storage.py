"""Issue 15 item 6: a full SIM/ME storage is swept at start and when the modem says it is full.

The simulator's storage has a capacity; when it is full the modem announces it (27.007
``+CIEV: "SMSFULL",1``, Huawei ``^SMMEMFULL``, Quectel ``+QIND: "smsfull"``) and the network
holds further messages until a slot is freed. The driver sweeps (reads, hands over, deletes
only after the handler returned) at start and on that indication; the inbound service stores
each PDU once (its digest), so a kill between the store and the delete duplicates nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.modem.driver import Modem, storage_full_indication
from appliance.modem.simulator import SimulatedModem, SimulatorError
from appliance.modem.types import InboundSms
from tests.utils.daemon import Daemon, all_inbound, free_port, toml_config
from tests.utils.wait import wait_until

SENDER = "+15551230000"


@pytest.mark.parametrize(("name", "args", "full"), [
    ("^SMMEMFULL", '"SM"', True),
    ("+QIND", '"smsfull","ME"', True),
    ("+QIND", '"csq",20,99', False),
    ("+CIEV", '"SMSFULL",1', True),
    ("+CIEV", '"SMSFULL",0', False),
    ("+CIEV", '"service",1', False),
])
def test_storage_full_indications(name: str, args: str, full: bool) -> None:
    assert storage_full_indication(name, args) is full


def test_capacity_is_checked(sim800: SimulatedModem) -> None:
    with pytest.raises(SimulatorError, match="at least 1"):
        sim800.set_storage_capacity(0)
    with pytest.raises(SimulatorError, match="no 'XX' storage"):
        sim800.set_storage_capacity(3, "XX")


def test_a_freed_slot_takes_what_the_network_held(sim800: SimulatedModem) -> None:
    sim800.set_storage_capacity(1)
    sim800.deliver_sms(SENDER, "first", direct=False)
    sim800.deliver_sms(SENDER, "second", direct=False)
    assert sim800.held_by_network == 1
    got: list[str] = []
    with Modem.open(sim800.path, on_sms=lambda e: got.append(e.message.text)) as modem:
        modem.initialize(read_stored=False)
        assert any('"SM",1,1' in line for line in modem.command("AT+CPMS?"))
        modem.delete_stored(1)  # the network delivers "second" to the freed slot, with +CMTI
        wait_until(lambda: got == ["second"] and not sim800.storage, what="the held message")
        assert sim800.held_by_network == 0


@pytest.mark.parametrize("persona", ["sim800", "huawei", "quectel"])
def test_driver_sweeps_at_start_and_on_the_full_indication(
    sim_factory: Callable[..., SimulatedModem], persona: str
) -> None:
    sim = sim_factory(persona)
    sim.set_storage_capacity(3)
    # Nobody listens: 3 fill the storage, 2 more wait in the network.
    for i in range(5):
        sim.deliver_sms(SENDER, f"early {i}", direct=False)
    assert sim.storage_full() and sim.held_by_network == 2
    got: list[str] = []
    lock = threading.Lock()

    def on_sms(event: InboundSms) -> None:
        with lock:
            got.append(event.message.text)

    with Modem.open(sim.path, on_sms=on_sms) as modem:
        modem.initialize()  # the start sweep frees slots; the network then delivers the rest
        wait_until(lambda: len(got) == 5 and not sim.storage, what="the start sweep")
        assert sorted(got) == [f"early {i}" for i in range(5)] and sim.held_by_network == 0
        # While running, indications get lost and the storage fills: the full URC sweeps it.
        texts = sim.fill_storage(SENDER)
        assert len(texts) == 3
        wait_until(lambda: len(got) == 8 and not sim.storage, what="the sweep on the full indication")
        assert sorted(got[5:]) == sorted(texts)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.reap()


def _daemon(tmp_path: Path, db_url: str, sim: SimulatedModem, link_dir: Path) -> Daemon:
    port = free_port()
    config = tmp_path / "appliance.toml"
    config.write_text(toml_config({
        "appliance": {"database_url": db_url, "log_level": "INFO"},
        "api": {"host": "127.0.0.1", "port": port},
        "discovery": {"patterns": [f"{link_dir}/ttyUSB*"]},
        "modems": [{"name": "field", "imei": sim.imei, "min_interval_s": 0}],
    }))
    return Daemon(config, port, tmp_path / "daemon.log")


def _bodies(db_url: str) -> list[str]:
    return sorted(m.body for m in all_inbound(db_url))


@pytest.mark.slow
def test_daemon_sweeps_a_full_storage_and_a_kill_duplicates_nothing(
    sim_factory: Callable[..., SimulatedModem], sim_link_dir: Path, tmp_path: Path, db_url: str,
    daemons: list[Daemon],
) -> None:
    sim = sim_factory("sim800")
    sim.set_storage_capacity(4)
    # Filled while the daemon is down; a multipart message and two more wait in the network.
    expected = [f"down {i}" for i in range(3)] + ["long " + "x" * 200, "late 1", "late 2"]
    for text in expected:
        sim.deliver_sms(SENDER, text, direct=False)
    assert sim.storage_full() and sim.held_by_network == 3
    daemon = _daemon(tmp_path, db_url, sim, sim_link_dir)
    daemons.append(daemon)
    daemon.start()
    daemon.wait_ready()
    wait_until(lambda: _bodies(db_url) == sorted(expected), what="everything stored once")
    wait_until(lambda: not sim.storage and sim.held_by_network == 0, what="an empty storage")

    # Running: indications lost, the storage fills, the full URC makes the daemon sweep.
    filled = sim.fill_storage(SENDER, prefix="while running")
    expected += filled
    wait_until(lambda: _bodies(db_url) == sorted(expected), what="the sweep on the full indication")
    wait_until(lambda: not sim.storage, what="an empty storage")
    assert "SMS storage full" in daemon.tail(200_000)

    # Killed between the store and the delete: the delete of slot 1 never gets an answer.
    sim.script_reply("AT+CMGD=1", b"")
    sim.deliver_sms(SENDER, "killed before the delete", direct=False)
    expected.append("killed before the delete")
    wait_until(lambda: _bodies(db_url) == sorted(expected), what="the store before the kill")
    daemon.kill()
    assert [m.index for m in sim.storage] == [1]  # not deleted
    sim.clear_scripts()
    daemon.start()
    daemon.wait_ready()
    wait_until(lambda: not sim.storage, what="the restart's sweep deleting it")
    assert _bodies(db_url) == sorted(expected)  # stored once, not twice
    assert daemon.stop() == 0
