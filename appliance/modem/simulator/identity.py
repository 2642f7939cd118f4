"""Identities for simulated modems: Luhn-checked IMEI/ICCID and IMSI, distinct in the process."""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable

__all__ = ["next_modem_number", "random_iccid", "random_imei", "random_imsi"]

_lock = threading.Lock()
_modem_numbers = itertools.count(1)
_issued_ids: set[str] = set()


def next_modem_number() -> int:
    """1, 2, 3, ... across the process (names unnamed modems ``<persona>-<n>``)."""
    with _lock:
        return next(_modem_numbers)


def _luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _unique_id(make: Callable[[], str]) -> str:
    with _lock:
        while True:
            value = make()
            if value not in _issued_ids:
                _issued_ids.add(value)
                return value


def _random_digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


def random_imei(tac: str) -> str:
    """A Luhn-valid IMEI starting with the 8-digit type allocation code ``tac``."""
    return _unique_id(lambda: (body := tac + _random_digits(6)) + _luhn_check_digit(body))


def random_iccid() -> str:
    """A Luhn-valid 20-digit test-network ICCID."""
    return _unique_id(lambda: (body := "8900101" + _random_digits(12)) + _luhn_check_digit(body))


def random_imsi() -> str:
    """A test-network (001-01) IMSI."""
    return _unique_id(lambda: "00101" + _random_digits(10))
