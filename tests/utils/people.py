"""Helpers for the tests of contacts, web users and API keys on both engines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from appliance.db import make_engine, migrate


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    """An engine on ``url`` at the newest schema, disposed of afterwards."""
    engine = make_engine(url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` on as many threads, released at the same moment; each one's result or
    the exception it raised, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # handed back to the test to assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
