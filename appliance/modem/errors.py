"""Typed errors of the modem layer.

The queue decides what to do with a failed send from these types alone:

* :class:`SendRejected` with ``temporary=True`` → retry later (maybe on another modem);
  ``temporary=False`` → the message fails.
* any :class:`ModemError` whose ``pdu_sent`` is False → nothing left the modem; safe to retry.
* ``pdu_sent`` True without a ``+CMGS`` answer (:class:`SendOutcomeUnknown`) → the part may
  or may not have left: it becomes ``unknown`` and is never resent silently.
"""

from __future__ import annotations

from appliance.errors import ApplianceError


class ModemError(ApplianceError):
    """Something went wrong talking to a modem.

    ``code`` is the numeric ``+CMS ERROR``/``+CME ERROR`` code when the modem gave one,
    ``kind`` says which (``"cms"``, ``"cme"`` or ``None``), ``temporary`` whether trying the
    same thing again later may succeed, ``pdu_sent`` whether the PDU of a send had been
    written (Ctrl-Z included) before the failure. ``definite`` is False only when the outcome
    of a send is unknown (:class:`SendOutcomeUnknown`): every other error says for sure what
    happened (a :class:`SendRejected` after Ctrl-Z has ``pdu_sent`` True, yet the network
    definitely refused the message).
    """

    definite: bool = True

    def __init__(
        self,
        message: str,
        *,
        modem: str | None = None,
        code: int | None = None,
        kind: str | None = None,
        temporary: bool = True,
        pdu_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.modem = modem
        self.code = code
        self.kind = kind
        self.temporary = temporary
        self.pdu_sent = pdu_sent

    def __str__(self) -> str:
        prefix = f"[{self.modem}] " if self.modem else ""
        return prefix + self.message


class ModemTimeout(ModemError):
    """The modem did not answer a command in time (the transport resyncs afterwards)."""


class ModemDisconnected(ModemError):
    """The serial port went away (unplugged, EIO, device node removed)."""


class PortBusy(ModemError):
    """Another process holds the serial port open exclusively."""


class PortPermissionDenied(ModemError):
    """The user may not open the serial port (usually: not in the ``dialout`` group)."""


class CommandError(ModemError):
    """The modem answered ``ERROR``, ``+CME ERROR`` or ``+CMS ERROR`` to a command."""


class SendRejected(CommandError):
    """The network or modem refused an SMS with a ``+CMS ERROR`` (or plain ``ERROR``)."""


class SendOutcomeUnknown(ModemError):
    """The PDU was handed to the modem but no ``+CMGS`` answer came: it may have left."""

    definite = False

    def __init__(self, message: str, *, modem: str | None = None) -> None:
        super().__init__(message, modem=modem, temporary=False, pdu_sent=True)


class SimPinError(ModemError):
    """The SIM needs a PIN that is missing, or the configured PIN is wrong (never retried)."""


class NoNetwork(ModemError):
    """The modem is not registered on a network."""


class UssdError(CommandError):
    """A USSD request ended without an answer to return.

    ``status`` is the ``+CUSD`` ``<m>`` the network sent (27.007 §7.15: 2 the network ended
    the session, 3 another client answered, 4 not supported, 5 the network timed out; 0 or
    1 only when that answer carried no text); ``text`` is what it said with it, decoded
    (``None`` when nothing).
    """

    def __init__(self, message: str, *, modem: str | None = None, status: int,
                 text: str | None = None, temporary: bool = True) -> None:
        super().__init__(message, modem=modem, temporary=temporary)
        self.status = status
        self.text = text
