"""The Twilio-compatible side of the appliance (the routes are
:mod:`appliance.api.routes.twilio`):

- :class:`TwilioCredentials`, :class:`IssuedCredential` — ``keys create --twilio``;
- :class:`TwilioService` — status callbacks and inbound webhooks with TwiML replies;
- :func:`twilio_signature` — ``X-Twilio-Signature``;
- :func:`twilio_status`, :data:`CALLBACK_STATUS` — how appliance states read in Twilio's terms.
"""

from __future__ import annotations

from appliance.twilio.credentials import CredentialError, IssuedCredential, TwilioCredentials
from appliance.twilio.model import CALLBACK_STATUS, twilio_status
from appliance.twilio.service import TwilioService, parse_twiml
from appliance.twilio.signing import twilio_signature

__all__ = [
    "CALLBACK_STATUS",
    "CredentialError",
    "IssuedCredential",
    "TwilioCredentials",
    "TwilioService",
    "parse_twiml",
    "twilio_signature",
    "twilio_status",
]
