"""One way for every test to wait for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    *,
    interval: float = 0.05,
    what: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that value.

    After ``timeout`` seconds the predicate is asked once more; a falsy answer then
    returns it as is, or raises ``AssertionError`` naming ``what`` when ``what`` is given.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    value = predicate()
    if not value and what is not None:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value
