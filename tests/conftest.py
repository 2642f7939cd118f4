"""Shared pytest fixtures.

Simulated modems (``appliance.modem.simulator``): ``sim_factory(persona, **kwargs)`` makes
and starts a :class:`SimulatedModem` whose links live in a per-test ``link_dir`` and stops
it at teardown (``start=False`` leaves it unstarted); ``sim800``, ``huawei`` and ``quectel``
are one started simulator each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from appliance.modem.simulator import SimulatedModem


@pytest.fixture
def sim_link_dir(tmp_path: Path) -> Path:
    """Where simulated modems put their ``ttyUSB<k>`` and by-id links in this test."""
    path = tmp_path / "dev"
    path.mkdir()
    return path


@pytest.fixture
def sim_factory(sim_link_dir: Path) -> Iterator[Callable[..., SimulatedModem]]:
    from appliance.modem.simulator import SimulatedModem

    made: list[SimulatedModem] = []

    def make(persona: str = "sim800", *, start: bool = True, **kwargs: Any) -> SimulatedModem:
        kwargs.setdefault("link_dir", sim_link_dir)
        sim = SimulatedModem(persona, **kwargs)
        made.append(sim)
        if start:
            sim.start()
        return sim

    yield make
    for sim in made:
        sim.stop()


@pytest.fixture
def sim800(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("sim800")


@pytest.fixture
def huawei(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("huawei")


@pytest.fixture
def quectel(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("quectel")
