"""Send budgets: minimum interval and sliding minute/hour/day windows counted in parts."""

from __future__ import annotations

import pytest

from appliance.config import ModemConfig
from appliance.queue import RateLimits, SendBudget


def test_limits_from_modem_config() -> None:
    cfg = ModemConfig(name="a", port="/dev/null", min_interval_s=1.5, max_parts_per_minute=4,
                      max_parts_per_hour=50, max_parts_per_day=300)
    limits = RateLimits.from_config(cfg, windows=(1, 10, 100))
    assert (limits.min_interval_s, limits.per_minute, limits.per_hour, limits.per_day) == (1.5, 4, 50, 300)
    assert limits.caps == ((1, 4), (10, 50), (100, 300)) and limits.smallest_cap == 4


def test_minute_window_slides() -> None:
    budget = SendBudget(RateLimits(min_interval_s=0, per_minute=3, per_hour=100, per_day=100))
    for t in (0.0, 10.0, 20.0):
        assert budget.next_slot(t) == t
        budget.record(t)
    assert budget.room(30.0) == 0
    assert budget.next_slot(30.0) == pytest.approx(60.0)  # the send at 0 s leaves the window at 60 s
    assert budget.room(60.0) == 1
    assert budget.next_slot(30.0, parts=2) == pytest.approx(70.0)
    assert budget.left(61.0) == (1, 97, 97)


def test_min_interval_and_hour_cap() -> None:
    budget = SendBudget(RateLimits(min_interval_s=2, per_minute=100, per_hour=2, per_day=100))
    budget.record(0.0)
    assert budget.next_slot(0.5) == 2.0
    budget.record(2.0)
    assert budget.next_slot(3.0) == pytest.approx(3600.0)
    assert budget.room(3599.0) == 0 and budget.room(3600.5) == 1


def test_move_and_forget_adjust_the_record() -> None:
    budget = SendBudget(RateLimits(min_interval_s=5, per_minute=2, per_hour=10, per_day=10))
    budget.record(1.0)
    budget.move(1.0, 1.5)  # the modem answered at 1.5 s
    assert budget.times == [1.5] and budget.next_slot(2.0) == 6.5
    budget.record(7.0)
    budget.forget(7.0)  # nothing reached the network
    assert budget.times == [1.5] and budget.room(7.0) == 1


def test_budget_loaded_from_history_counts_old_sends() -> None:
    limits = RateLimits(min_interval_s=0, per_minute=6, per_hour=200, per_day=1000)
    budget = SendBudget(limits, times=[100.0 - 30 * i for i in range(6)])
    assert budget.left(100.0) == (4, 194, 994)
    view = budget.view("m", 100.0)
    assert view.minute_left == 4 and view.next_allowed_at == 100.0


@pytest.mark.parametrize("cap", [1, 3, 7])
def test_next_slot_never_exceeds_cap_in_any_window(cap: int) -> None:
    budget = SendBudget(RateLimits(min_interval_s=0.1, per_minute=cap, per_hour=1000, per_day=1000), [])
    now, sent = 0.0, []
    for _ in range(40):
        now = budget.next_slot(now)
        budget.record(now)
        sent.append(now)
    for t in sent:
        assert sum(1 for s in sent if t - 60 < s <= t) <= cap
    # and the cap is used: exactly `cap` sends in every full minute after the first
    assert sum(1 for s in sent if 60 <= s < 120) == cap
