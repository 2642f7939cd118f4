"""A clock for the code under test that moves only when the test says."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """UNIX seconds that move only when told."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
