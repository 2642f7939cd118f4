"""The states of messages and parts (docs/architecture.md, "Message states")."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINAL_STATES", "MESSAGE_STATES", "PRIORITIES", "PRIORITY_NAMES", "MessageStatus", "PartState"]


class MessageStatus(StrEnum):
    """A message's state as stored and as the API shows it."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"  # handed to the modem, no answer: never resent without an operator
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"  # the recipient opted out: never sent
    EXPIRED = "expired"  # not sent before its validity ended


class PartState(StrEnum):
    """One SMS-SUBMIT's state; ``submitting`` is committed before its PDU is written."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


MESSAGE_STATES: tuple[str, ...] = tuple(s.value for s in MessageStatus)
FINAL_STATES = frozenset({
    MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.UNKNOWN, MessageStatus.CANCELLED,
    MessageStatus.SUPPRESSED, MessageStatus.EXPIRED,
})
PRIORITIES: dict[str, int] = {"high": 0, "normal": 1, "low": 2}
PRIORITY_NAMES: dict[int, str] = {v: k for k, v in PRIORITIES.items()}
