"""Modem layer: AT transport, driver, discovery, recovery and the pty simulator."""

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
)
from appliance.modem.types import (
    InboundSms,
    ModemIdentity,
    Registration,
    SignalQuality,
    StatusReportEvent,
)

__all__ = [
    "CommandError",
    "InboundSms",
    "ModemDisconnected",
    "ModemError",
    "ModemIdentity",
    "ModemTimeout",
    "NoNetwork",
    "PortBusy",
    "PortPermissionDenied",
    "Registration",
    "SendOutcomeUnknown",
    "SendRejected",
    "SignalQuality",
    "SimPinError",
    "StatusReportEvent",
]
