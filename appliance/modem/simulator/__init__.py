"""A pty modem simulator: a real serial backend that answers AT commands like a GSM modem.

Each :class:`SimulatedModem` opens real pseudo-terminals (one per tty of the simulated USB
device), puts them in raw mode and serves their master side from one thread. Clients open
``sim.path`` with pyserial exactly as they would open ``/dev/ttyUSB2``; nothing in the
client knows it talks to a simulator. The simulator decodes every submitted PDU with
:mod:`appliance.pdu`, logs it in :attr:`SimulatedModem.sent`, and injects faults on request
(CMS errors, silence, unplug/replug, garbage, no network, SIM PIN, latency).

Behaviour common to all personas (see :mod:`appliance.modem.personas` for the differences):

* Commands end at CR (LF and CRLF work too); characters before ``AT`` on a line are ignored,
  and a line without ``AT`` gets no answer. Several commands may share a line (``;``).
* Echo is on after power-up until ``ATE0``; the echo is the raw bytes received.
* Responses are framed ``\\r\\n<line>\\r\\n``; the final code is ``OK``, ``ERROR``,
  ``+CME ERROR: <n>`` or ``+CMS ERROR: <n>``. With ``AT+CMEE=0`` every error is a plain
  ``ERROR``; ``AT+CMEE=1`` gives numbers, ``AT+CMEE=2`` words. Unknown commands answer the
  persona's "unsupported" line whatever CMEE says.
* ``AT+CMGS=<n>`` (PDU mode) answers ``\\r\\n> ``, then reads hex until Ctrl-Z (ESC cancels
  and answers ``OK``). The TPDU length must equal ``n`` and the PDU must decode as an
  SMS-SUBMIT, else ``+CMS ERROR: 304``. Then, in this order: a queued :meth:`fail_sends`
  code, no network (``331``), or success: the TP-MR (a per-modem counter wrapping at 256) is
  assigned, the submission is logged at once, and ``+CMGS: <mr>`` + ``OK`` follow after
  :attr:`latency_s`. Input that arrives meanwhile waits; URCs are held until the answer.
  Text mode (``AT+CMGF=1``) sends work too (``AT+CMGS="<da>"``); text-mode *reading*
  (``AT+CMGL``/``AT+CMGR``) answers ``+CMS ERROR: 302``.
* Inbound messages go to the CNMI "receive" storage (``AT+CPMS`` third parameter) and are
  announced with ``+CMTI`` when ``mt`` is 1 or 3, routed as ``+CMT: ,<len>`` when ``mt`` is
  2, stored silently when ``mt`` is 0. CNMI ``mode=0`` buffers indications until a later
  ``AT+CNMI`` with mode 1/2 and ``bfr=0`` flushes them. Status reports: ``ds=1`` → ``+CDS``,
  ``ds=2`` → stored + ``+CDSI``, ``ds=0`` → dropped. After ``AT+CSMS=1`` each routed
  ``+CMT``/``+CDS`` expects ``AT+CNMA`` (otherwise ``AT+CNMA`` answers ``+CMS ERROR: 340``).
* ``AT+CFUN=1,1`` answers ``OK`` then reboots in place (same tty) after
  :attr:`reset_delay_s`: input is dropped meanwhile, then boot lines; echo, CMEE, CNMI and
  the PIN lock are as after power-up; storage and the MR counter are kept.
* :meth:`SimulatedModem.script_reply` makes a command line get a recorded answer (bytes as
  a real modem printed them, URCs and pauses included) instead of the persona's own.

The simulator is three stacked layers, each overriding the hooks of the one below (the
style of pyserial's ``threaded`` module): :mod:`.pty` (ttys, links, serving thread,
timers; hook ``handle_bytes``), :mod:`.commands` (AT parsing, the handler table, storage
and sending; hooks ``intercept_line`` and ``send_failure``) and :mod:`.faults` (injected
CMS errors, scripted replies, hangs, garbage). :class:`SimulatedModem` is the top of the
stack; this package's ``__init__`` is its public face.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from appliance.modem.personas import PERSONAS
from appliance.modem.simulator.commands import SentRecord, StoredMessage
from appliance.modem.simulator.faults import FaultyModem
from appliance.modem.simulator.pty import SimulatorError

__all__ = [
    "PERSONAS",
    "SentRecord",
    "SimulatedModem",
    "SimulatorError",
    "SimulatorPool",
    "StoredMessage",
]


class SimulatedModem(FaultyModem):
    """One simulated USB modem on real pseudo-terminals.

    ``persona`` picks the model (:data:`PERSONAS`). Identity fields default to random but
    valid-looking values (Luhn-checked IMEI/ICCID), distinct within the process. With
    ``link_dir`` every tty also gets a ``ttyUSB<k>`` symlink (a new ``k`` at each replug, as
    udev does) and a by-id symlink ``usb-<vendor>_<product>_<imei>-if0<i>-port0`` (stable
    across replugs); :attr:`path` is then the ``ttyUSB<k>`` link of the AT port.
    ``extra_ports`` adds that many silent ttys after the persona's own.
    """

    def start(self) -> Self:
        """Open the ptys, send the boot lines and start serving. Returns ``self``."""
        super().start()
        self.log.info("started (%s) on %s", self.persona, self.path)
        return self

    def __repr__(self) -> str:
        where = self.at_port().path if self.ports else "not started"
        return f"<SimulatedModem {self.name} {self.persona} imei={self.imei} at {where}>"


class SimulatorPool:
    """Runs ``n`` simulated modems, cycling through ``personas``; a context manager.

    Extra keyword arguments go to every :class:`SimulatedModem`. Modems are named
    ``sim1``, ``sim2``, ... unless ``name`` is given (then ``<name>1``, ...).
    """

    def __init__(
        self,
        n: int,
        *,
        personas: Iterable[str] = ("sim800", "huawei", "quectel"),
        link_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if n < 0:
            raise SimulatorError(f"cannot simulate {n} modems; give 0 or more")
        cycle = list(personas)
        if not cycle:
            raise SimulatorError("SimulatorPool needs at least one persona")
        prefix = kwargs.pop("name", None) or "sim"
        self.modems: list[SimulatedModem] = [
            SimulatedModem(cycle[i % len(cycle)], name=f"{prefix}{i + 1}", link_dir=link_dir, **kwargs)
            for i in range(n)
        ]

    @property
    def paths(self) -> list[str]:
        """The AT port of each modem, in order."""
        return [m.path for m in self.modems]

    def start(self) -> SimulatorPool:
        try:
            for modem in self.modems:
                modem.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for modem in self.modems:
            modem.stop()

    def __enter__(self) -> SimulatorPool:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
