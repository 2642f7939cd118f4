"""``X-Twilio-Signature``: base64 HMAC-SHA1, keyed by the Auth Token, of the full URL
followed by each POST parameter's name and value, sorted by name (Twilio's algorithm, so
``twilio.request_validator.RequestValidator`` accepts it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

__all__ = ["twilio_signature"]


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio would send for a form POST of ``params`` to ``url``."""
    data = url + "".join(f"{k}{v}" for k, v in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
