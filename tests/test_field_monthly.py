"""Issue 15: the monthly parts cap (``max_parts_per_month``): counted from the send log at
worker start, kept in memory, enforced by the dispatcher; end to end on both engines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.config import ConfigError, load_settings
from appliance.modem.simulator import SimulatedModem
from appliance.queue.ratelimit import RateLimits, SendBudget, month_start, next_month_start
from tests.utils.field import wait_until


def _local(y: int, m: int, d: int, hh: int = 0) -> float:
    return datetime(y, m, d, hh).astimezone().timestamp()


def test_month_bounds_are_local_calendar_months() -> None:
    assert month_start(_local(2026, 3, 17, 13)) == _local(2026, 3, 1)
    assert next_month_start(_local(2026, 3, 17, 13)) == _local(2026, 4, 1)
    assert next_month_start(_local(2026, 12, 31, 23)) == _local(2027, 1, 1)
    assert month_start(_local(2026, 1, 1)) == _local(2026, 1, 1)


def test_budget_counts_the_month_and_starts_again_next_month() -> None:
    limits = RateLimits(min_interval_s=0, per_minute=100, per_hour=100, per_day=100, per_month=5)
    now = _local(2026, 3, 31, 22)
    budget = SendBudget(limits, month_from=month_start(now), month_parts=3)
    assert budget.month_left(now) == 2 and budget.room(now) == 2
    budget.record(now)
    budget.record(now + 1)
    assert budget.room(now + 2) == 0 and budget.month_left(now + 2) == 0
    assert budget.next_slot(now + 2) == _local(2026, 4, 1)
    budget.forget(now + 1)  # nothing left after all
    assert budget.month_left(now + 2) == 1
    april = _local(2026, 4, 1, 0) + 60
    budget.record(april - 30)  # a part in the new month before the roll-over is seen
    assert budget.month_left(april) == 4
    assert budget.view("m", april).month_left == 4


def test_without_a_monthly_cap_nothing_changes() -> None:
    budget = SendBudget(RateLimits(min_interval_s=0, per_minute=2, per_hour=10, per_day=10))
    assert budget.month_left(1000.0) is None and budget.room(1000.0) == 2
    assert budget.view("m", 1000.0).month_left is None


@pytest.mark.parametrize("bad", ["max_parts_per_month = 0", 'max_parts_per_month = "lots"'])
def test_bad_monthly_cap_names_the_key(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[[modems]]\nname = "a"\nport = "/dev/ttyUSB0"\n{bad}\n')
    with pytest.raises(ConfigError, match="max_parts_per_month"):
        load_settings(path)


def _start(factory: Any, db_url: str, sim: SimulatedModem, tmp_path: Path) -> Any:
    return factory(simulate=0, settings={
        "appliance": {"database_url": db_url},
        "modems": [{"name": "capped", "imei": sim.imei, "min_interval_s": 0, "max_parts_per_month": 3}],
        "discovery": {"patterns": [str(tmp_path / "serial" / "ttyUSB*")]},
    })


def test_monthly_cap_holds_messages_and_survives_a_restart(tmp_path: Path, db_url: str,
                                                           live_server_factory: Any) -> None:
    sim = SimulatedModem("quectel", link_dir=tmp_path / "serial")
    sim.start()
    try:
        server = _start(live_server_factory, db_url, sim, tmp_path)
        with server.client() as c:
            for i in range(2):
                assert c.post("/v1/messages", json={"to": "+14155550100", "body": f"m{i}"}).status_code == 202
            assert wait_until(lambda: len(sim.sent) == 2)
            budget = wait_until(lambda: (c.get("/v1/modems").json()["modems"][0]["budget"] or {}).get("month_left") == 1)
            assert budget
        server.app.stop()

        again = _start(live_server_factory, db_url, sim, tmp_path)
        with again.client() as c:
            assert c.get("/v1/modems").json()["modems"][0]["budget"]["month_left"] == 1  # from the send log
            ids = [c.post("/v1/messages", json={"to": "+14155550101", "body": f"n{i}"}).json()["messages"][0]["id"]
                   for i in range(3)]
            assert wait_until(lambda: len(sim.sent) == 3)
            worker = again.app.dispatcher
            assert wait_until(lambda: worker.budgets()["capped"].month_left == 0)
            # the worker goes idle with work left: the other two wait for next month
            assert wait_until(lambda: any(h.activity == "idle" for h in worker.health()))
            states = sorted(c.get(f"/v1/messages/{i}").json()["status"] for i in ids)
            assert states == ["queued", "queued", "sent"] and len(sim.sent) == 3
            metrics = c.get("/metrics").text
            assert 'appliance_modem_budget_left{modem="capped",window="month"} 0.0' in metrics
    finally:
        sim.stop()


def test_monthly_recipient_cap_texts_only_known_numbers(tmp_path: Path, db_url: str,
                                                        live_server_factory: Any) -> None:
    sim = SimulatedModem("sim800", link_dir=tmp_path / "serial")
    sim.start()
    settings = {
        "appliance": {"database_url": db_url},
        "modems": [{"name": "capped", "imei": sim.imei, "min_interval_s": 0, "max_recipients_per_month": 2}],
        "discovery": {"patterns": [str(tmp_path / "serial" / "ttyUSB*")]},
    }
    a, b, c_, d = "+14155550100", "+14155550101", "+14155550102", "+14155550103"
    try:
        server = live_server_factory(simulate=0, settings=settings)
        with server.client() as c:
            for to in (a, b):
                assert c.post("/v1/messages", json={"to": to, "body": "first"}).status_code == 202
            assert wait_until(lambda: len(sim.sent) == 2)
            # a third number waits; a known number still goes, even after it
            waiting = c.post("/v1/messages", json={"to": c_, "body": "new number"}).json()["messages"][0]["id"]
            c.post("/v1/messages", json={"to": a, "body": "again"})
            assert wait_until(lambda: len(sim.sent) == 3)
            assert sim.sent[-1].to == a and sim.sent[-1].text == "again"
            assert c.get(f"/v1/messages/{waiting}").json()["status"] == "queued"
        server.app.stop()

        again = live_server_factory(simulate=0, settings=settings)
        with again.client() as c:  # the month's numbers come back from the send log
            new = c.post("/v1/messages", json={"to": d, "body": "another new one"}).json()["messages"][0]["id"]
            c.post("/v1/messages", json={"to": b, "body": "known"})
            assert wait_until(lambda: len(sim.sent) == 4)
            assert sim.sent[-1].to == b
            worker = again.app.dispatcher
            assert wait_until(lambda: any(h.activity == "idle" for h in worker.health()))
            statuses = [c.get(f"/v1/messages/{i}").json()["status"] for i in (waiting, new)]
            assert statuses == ["queued", "queued"] and len(sim.sent) == 4
    finally:
        sim.stop()
