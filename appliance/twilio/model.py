"""How the appliance's messages look through the Twilio API: states, error codes, times,
the message resource and the error body.

State mapping (README, "Twilio-compatible API"):

=============================  ===================  ==========
appliance                      Twilio ``status``    error_code
=============================  ===================  ==========
queued                         queued
queued with a future send_at   scheduled
sending                        sending
sent                           sent
delivered                      delivered
failed, a status report said   undelivered          30007
failed (modem/network refused) failed               30008
unknown                        sending              30008
cancelled                      canceled
suppressed (opted out)         failed               21610
expired (ValidityPeriod)       failed               30036
=============================  ===================  ==========

``unknown`` means the SMS was handed to the modem and no answer came: it may have left.
Twilio has no such state. ``sent``/``delivered`` would claim a success and ``failed`` a
definite failure (a client would resend, and the recipient might get it twice), so it stays
the non-final ``sending`` with error 30008 and an ``error_message`` saying the outcome is
unknown and an operator must decide whether to resend.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from appliance.db.twilio import TwilioMessageRow

__all__ = [
    "API_VERSION",
    "CALLBACK_STATUS",
    "error_body",
    "message_resource",
    "rfc2822",
    "twilio_status",
]

API_VERSION = "2010-04-01"
MORE_INFO = "https://www.twilio.com/docs/errors/"
UNKNOWN_OUTCOME = ("the modem took the SMS but never confirmed it: it may have been sent; "
                   "an operator decides whether to resend it")

CALLBACK_STATUS: Mapping[str, tuple[str, int | None]] = {
    "sent": ("sent", None),
    "delivered": ("delivered", None),
    "undelivered": ("undelivered", 30007),
    "failed": ("failed", 30008),
    "unknown": ("sending", 30008),
    "cancelled": ("canceled", None),
    "suppressed": ("failed", 21610),
    "expired": ("failed", 30036),
}
"""An appliance event kind → the ``MessageStatus`` and ``ErrorCode`` of its callback."""


def rfc2822(ts: float | None) -> str | None:
    """UNIX seconds as Twilio writes dates (``Mon, 30 Nov 2026 00:37:04 +0000``)."""
    if ts is None:
        return None
    return format_datetime(datetime.fromtimestamp(int(ts), UTC)).replace("-0000", "+0000")


def twilio_status(row: TwilioMessageRow, now: float) -> tuple[str, int | None, str | None]:
    """``(status, error_code, error_message)`` of a message (module doc)."""
    s = row.status
    if s == "queued":
        return ("scheduled" if row.send_at is not None and row.send_at > now else "queued"), None, None
    if s in ("sending", "sent", "delivered"):
        return s, None, None
    if s == "failed":
        if row.undelivered:
            return "undelivered", 30007, row.error or "the network reported the SMS undelivered"
        return "failed", 30008, row.error or "the SMS could not be sent"
    if s == "unknown":
        return "sending", 30008, UNKNOWN_OUTCOME
    if s == "cancelled":
        return "canceled", None, None
    if s == "suppressed":
        return "failed", 21610, "the recipient replied STOP: messages to this number are not sent"
    if s == "expired":
        return "failed", 30036, "not sent before its ValidityPeriod ended"
    return "failed", 30008, row.error  # a state added later: never shown as a success


def message_resource(row: TwilioMessageRow, *, sender: str | None, now: float) -> dict[str, Any]:
    """The Twilio Message resource of ``row``; ``sender`` is its ``from``."""
    status, code, message = twilio_status(row, now)
    base = f"/{API_VERSION}/Accounts/{row.account_sid}/Messages/{row.sid}"
    return {
        "account_sid": row.account_sid,
        "api_version": API_VERSION,
        "body": row.body,
        "date_created": rfc2822(row.created_at),
        "date_sent": rfc2822(row.sent_at),
        "date_updated": rfc2822(row.updated_at),
        "direction": "outbound-api",
        "error_code": code,
        "error_message": message,
        "from": sender,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(row.parts),
        "price": None,
        "price_unit": "USD",
        "sid": row.sid,
        "status": status,
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": row.recipient,
        "uri": f"{base}.json",
    }


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error JSON."""
    return {"code": code, "message": message, "more_info": f"{MORE_INFO}{code}", "status": status}
