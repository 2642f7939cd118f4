"""Per-number privacy requests: export everything stored about a number, or erase it.

Erasing removes the contact (and its group memberships), cancels messages still queued to
the number and erases the bodies of its messages and of the texts it sent (the rows stay,
marked redacted), empties those texts in the webhook outbox's payloads, deletes its email
thread and the mails carrying its texts, and the waiting parts of its multipart texts. The opt-out list and the consent log are kept: the law asks for proof
of consent, and an opted-out number must stay never texted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from appliance.audit import Action, Actor, number_ref, record, write
from appliance.db import consent as consent_db
from appliance.db import messages as messages_db
from appliance.db import retention as retention_db
from appliance.db.engine import read_tx, write_tx
from appliance.numbers import mask

__all__ = ["ErasureReport", "erase_number", "export_number"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What an erasure did for ``number``."""

    number: str
    contact_deleted: bool
    messages_cancelled: int
    message_bodies: int
    inbound_bodies: int
    still_opted_out: bool
    webhook_payloads: int = 0  # outbox payloads of its texts' events, body emptied
    emails: int = 0  # mails carrying its texts (answers, copies), deleted with its email thread
    fragments: int = 0  # parts of its multipart texts still waiting for their siblings


def export_number(engine: Engine, number: str, *, actor: Actor | None = None) -> dict[str, Any]:
    """Everything stored about ``number`` (E.164) as JSON-ready data; the export is
    recorded in the audit trail as ``actor``'s (the number as :func:`number_ref`)."""
    with read_tx(engine) as tx:
        data = retention_db.export_number(tx, number)
    if actor is not None:
        record(engine, actor, Action.PRIVACY_EXPORT, number_ref(number))
    return data


def erase_number(engine: Engine, number: str, *, by: str, clock: Callable[[], float] = time.time,
                 actor: Actor | None = None) -> ErasureReport:
    """Erase what is stored about ``number`` (E.164), in one transaction (with its audit
    line as ``actor``'s, the number as :func:`number_ref`)."""
    now = clock()
    with write_tx(engine) as tx:
        if actor is not None:
            write(tx, actor, Action.PRIVACY_ERASE, number_ref(number))
        tx.lock(f"privacy:{number}")
        queued = retention_db.queued_to(tx, number)
        for message_id in queued:
            messages_db.cancel_queued(tx, message_id, now, by=by)
        messages, inbound = retention_db.erase_number_bodies(tx, number, now)
        texts = retention_db.inbound_ids_of(tx, number)
        payloads = retention_db.redact_webhook_payloads_of(tx, texts)
        emails = retention_db.delete_email_of(tx, number, texts)
        fragments = retention_db.delete_fragments_of(tx, number)
        contact = retention_db.delete_contact_of(tx, number)
        opted_out = consent_db.is_opted_out(tx, number)
    _log.info("privacy erase of %s by %s: %d message bodies, %d inbound texts, %d webhook payloads, %d mails, "
              "%d waiting parts, contact %s", mask(number), by, messages, inbound, payloads, emails, fragments,
              "deleted" if contact else "none")
    return ErasureReport(number, contact, len(queued), messages, inbound, opted_out,
                         webhook_payloads=payloads, emails=emails, fragments=fragments)
