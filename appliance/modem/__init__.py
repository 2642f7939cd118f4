"""Modem layer: AT transport, driver, discovery, recovery and the pty simulator."""

from __future__ import annotations

from appliance.modem.codes import ErrorCode, cme_error, cms_error
from appliance.modem.discovery import DEFAULT_PATTERNS, PortProbe, discover_modems, find_modem
from appliance.modem.driver import Diagnostics, Modem, StorageUse, StoredPdu, signal_from_rssi
from appliance.modem.errors import (
    CommandError,
    ModemDisconnected,
    ModemError,
    ModemTimeout,
    NoNetwork,
    PortBusy,
    PortPermissionDenied,
    SendOutcomeUnknown,
    SendRejected,
    SimPinError,
    UssdError,
)
from appliance.modem.managed import ManagedModem
from appliance.modem.transport import ATTransport, Response, Urc
from appliance.modem.types import (
    InboundSms,
    ModemIdentity,
    Registration,
    SignalQuality,
    StatusReportEvent,
)

__all__ = [
    "DEFAULT_PATTERNS",
    "ATTransport",
    "CommandError",
    "Diagnostics",
    "ErrorCode",
    "InboundSms",
    "ManagedModem",
    "Modem",
    "ModemDisconnected",
    "ModemError",
    "ModemIdentity",
    "ModemTimeout",
    "NoNetwork",
    "PortBusy",
    "PortPermissionDenied",
    "PortProbe",
    "Registration",
    "Response",
    "SendOutcomeUnknown",
    "SendRejected",
    "SignalQuality",
    "SimPinError",
    "StatusReportEvent",
    "StorageUse",
    "StoredPdu",
    "Urc",
    "UssdError",
    "cme_error",
    "cms_error",
    "discover_modems",
    "find_modem",
    "signal_from_rssi",
]
