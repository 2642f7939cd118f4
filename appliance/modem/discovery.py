"""Finding modems: which serial ports answer AT, which of them do SMS, and who they are.

Ports come from glob patterns (default ``/dev/serial/by-id/*``, ``/dev/ttyUSB*``,
``/dev/ttyACM*``); links to the same device are probed once. Each port is opened
exclusively — a port some worker owns shows as busy and is left alone — and probed in
parallel, so silent diagnostic ttys of multi-port modems cost one timeout in total.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from appliance.modem.driver import Modem
from appliance.modem.errors import ModemError, PortBusy, PortPermissionDenied
from appliance.modem.transport import ATTransport
from appliance.modem.types import ModemIdentity

__all__ = ["DEFAULT_PATTERNS", "PortProbe", "candidate_ports", "discover_modems", "find_modem",
           "probe_port"]

_log = logging.getLogger(__name__)

DEFAULT_PATTERNS: tuple[str, ...] = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")


@dataclass(frozen=True, slots=True)
class PortProbe:
    """What one port said. ``error`` explains a port that could not be probed (busy,
    permission denied); ``answers_at`` False with no error means silence."""

    path: str
    device: str
    answers_at: bool = False
    sms_capable: bool = False
    identity: ModemIdentity | None = None
    error: str | None = None


def candidate_ports(patterns: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``(path, real device)`` for every port matching ``patterns``, one per device, in
    pattern order (so a by-id name wins over its ``ttyUSB`` alias)."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for pattern in patterns or DEFAULT_PATTERNS:
        for path in sorted(glob.glob(pattern)):
            device = os.path.realpath(path)
            if device in seen or not os.path.exists(device) or os.path.isdir(device):
                continue
            seen.add(device)
            out.append((path, device))
    return out


def probe_port(path: str, *, timeout: float = 1.0, baudrate: int = 115200,
               device: str | None = None) -> PortProbe:
    """Open ``path``, see whether it answers AT, whether it does SMS, and who it is."""
    device = device or os.path.realpath(path)
    transport = ATTransport(path, name=os.path.basename(path), baudrate=baudrate,
                            resync_timeout=timeout, quiet_s=0.02)
    try:
        transport.open()
    except (PortBusy, PortPermissionDenied) as exc:
        return PortProbe(path, device, error=exc.message)
    except ModemError as exc:
        return PortProbe(path, device, error=exc.message)
    try:
        modem = Modem(transport, name=os.path.basename(path), command_timeout=timeout)
        if not transport.resync(timeout):
            return PortProbe(path, device)
        modem.command("ATE0")
        modem._try("AT+CMEE=1")  # noqa: SLF001 - same package
        sms = modem.sms_ready()
        identity = modem.identity()
        return PortProbe(path, device, answers_at=True, sms_capable=sms, identity=identity)
    except ModemError as exc:
        return PortProbe(path, device, answers_at=False, error=exc.message)
    finally:
        transport.close()


def discover_modems(patterns: Sequence[str] | None = None, *, timeout: float = 1.0,
                    baudrate: int = 115200, workers: int = 16) -> list[PortProbe]:
    """Probe every candidate port in parallel; one :class:`PortProbe` per port, in order."""
    ports = candidate_ports(patterns)
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ports))),
                            thread_name_prefix="modem-probe") as pool:
        futures = [pool.submit(probe_port, path, timeout=timeout, baudrate=baudrate,
                               device=device) for path, device in ports]
        return [f.result() for f in futures]


def find_modem(*, imei: str | None = None, iccid: str | None = None,
               patterns: Sequence[str] | None = None, timeout: float = 1.0,
               baudrate: int = 115200) -> PortProbe | None:
    """The SMS port of the modem with this IMEI (or SIM with this ICCID), or None."""
    if not imei and not iccid:
        return None
    for probe in discover_modems(patterns, timeout=timeout, baudrate=baudrate):
        ident = probe.identity
        if not probe.sms_capable or ident is None:
            continue
        if (imei and ident.imei == imei) or (iccid and ident.iccid == iccid):
            _log.info("found modem %s on %s", imei or iccid, probe.path)
            return probe
    return None
