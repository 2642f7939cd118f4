"""What the email side is set to (never the relay's password), for ``appliance email info``
and the /email page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.email.certs import certificate

if TYPE_CHECKING:
    from appliance.config import Settings

__all__ = ["describe"]


def describe(settings: Settings, *, create_cert: bool = False, port: int | None = None) -> dict[str, object]:
    """The settings of ``[email]`` as shown to an admin, with the certificate's SHA-256
    fingerprint (``create_cert``: make the self-signed one now if there is none)."""
    cfg = settings.email
    cert = certificate(settings, create=create_cert)
    relay = cfg.relay
    return {
        "enabled": cfg.enabled,
        "listen": f"{cfg.host}:{port if port is not None else cfg.port}",
        "domain": cfg.domain,
        "text_from": cfg.text_from,
        "allow_networks": list(cfg.allow_networks),
        "allow_from": list(cfg.allow_from),
        "group_senders": list(cfg.group_senders),
        "max_mails_per_minute": cfg.max_mails_per_minute,
        "max_message_bytes": cfg.max_message_bytes,
        "inbound_to": cfg.inbound_to or None,
        "report_failures": cfg.report_failures,
        "relay": f"{relay.host}:{relay.port}" if relay.host else None,
        "relay_starttls": relay.starttls if relay.host else None,
        "relay_user": (relay.user or None) if relay.host else None,
        "certificate": str(cert.cert_file) if cert else None,
        "self_signed": cert.self_signed if cert else None,
        "fingerprint_sha256": cert.fingerprint if cert else None,
    }
