"""Typed errors of the queue (defined by the data layer, :mod:`appliance.db.errors`)."""

from __future__ import annotations

from appliance.db.errors import (
    ConstraintViolation,
    DatabaseUnavailable,
    DuplicateIdempotencyKey,
    InvalidRequest,
    InvalidState,
    MigrationError,
    NotFound,
    QueueError,
)

__all__ = [
    "ConstraintViolation",
    "DatabaseUnavailable",
    "DuplicateIdempotencyKey",
    "InvalidRequest",
    "InvalidState",
    "MigrationError",
    "NotFound",
    "QueueError",
]
