"""Twilio-style credentials: an Account SID with its Auth Token, and an API key SID with
its secret, both tied to an appliance API key (its scopes; revoking it revokes them).

Requests are checked against SHA-256 digests in constant time. The Auth Token itself is
kept too, because Twilio signs callbacks with it (README, "Twilio-compatible API").
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from appliance.db import keys as keys_db
from appliance.db import twilio as twilio_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.twilio import Credential
from appliance.errors import ApplianceError

__all__ = ["Credential", "CredentialError", "IssuedCredential", "TwilioCredentials"]



class CredentialError(ApplianceError):
    """A credential request that cannot be honoured (empty name, unknown scope)."""


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """What ``keys create --twilio`` prints once."""

    key_id: str
    name: str
    scopes: frozenset[str]
    account_sid: str
    auth_token: str
    api_key_sid: str
    api_key_secret: str


class TwilioCredentials:
    """The ``twilio_credentials`` table (with their ``api_keys`` rows)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, scopes: Iterable[str]) -> IssuedCredential:
        """A new Account SID + Auth Token and API key SID + secret under a new API key."""
        name, wanted = name.strip(), frozenset(scopes)
        problem = keys_db.new_key_problem(name, wanted)
        if problem is not None:
            raise CredentialError(problem)
        now = time.time()
        account_sid = "AC" + secrets.token_hex(16)
        auth_token = secrets.token_hex(16)
        api_key_sid = "SK" + secrets.token_hex(16)
        api_key_secret = secrets.token_urlsafe(24)
        while True:
            key_id = secrets.token_hex(4)
            with write_tx(self.engine) as tx:
                # The API key row carries the scopes and the revocation; it has no usable
                # sk_ secret (its digest is of a random string nobody is given).
                key = keys_db.insert_key(tx, key_id, name, keys_db.digest(secrets.token_hex(32)), wanted, now)
                if key is None:
                    continue
                twilio_db.insert_credential(
                    tx, account_sid=account_sid, key_id=key_id, auth_token=auth_token,
                    token_digest=keys_db.digest(auth_token), api_key_sid=api_key_sid,
                    api_key_digest=keys_db.digest(api_key_secret), now=now,
                )
            return IssuedCredential(key_id, name, wanted, account_sid, auth_token, api_key_sid, api_key_secret)

    def authenticate(self, username: str, password: str) -> Credential | None:
        """The live credential for HTTP Basic ``username:password`` (``AC…:token`` or
        ``SK…:secret``), or None. Constant-time on the secret."""
        with read_tx(self.engine) as tx:
            if username.startswith("AC"):
                cred = twilio_db.find_credential(tx, account_sid=username)
                digest = cred.token_digest if cred is not None else "0" * 64
            elif username.startswith("SK"):
                cred = twilio_db.find_credential(tx, api_key_sid=username)
                digest = cred.api_key_digest if cred is not None else "0" * 64
            else:
                return None
        if not hmac.compare_digest(digest, keys_db.digest(password)) or cred is None or cred.revoked:
            return None
        return cred

    def get(self, account_sid: str) -> Credential | None:
        """The credential of ``account_sid`` (revoked ones too), or None."""
        with read_tx(self.engine) as tx:
            return twilio_db.find_credential(tx, account_sid=account_sid)
