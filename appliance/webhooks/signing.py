"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``.

A receiver checks a delivery with :func:`verify` and the raw request body::

    ok = verify(secret, request.headers["X-Appliance-Timestamp"], raw_body,
                request.headers["X-Appliance-Signature"])

The timestamp is signed too, so a captured delivery cannot be replayed after
``tolerance_s``; receivers should still de-duplicate on ``X-Appliance-Event-Id`` because
delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_PREFIX", "sign", "verify"]

SIGNATURE_PREFIX = "sha256="


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def sign(secret: str | bytes, timestamp: int | str, body: str | bytes) -> str:
    """``"sha256=<hex>"``: HMAC-SHA256 with ``secret`` of ``f"{timestamp}.{body}"``."""
    message = _bytes(str(timestamp)) + b"." + _bytes(body)
    return SIGNATURE_PREFIX + hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify(
    secret: str | bytes,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is :func:`sign` of this timestamp and body and the timestamp is
    within ``tolerance_s`` of ``now`` (default: the current time)."""
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())
