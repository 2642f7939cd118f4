"""The daemon's side of systemd's service protocol, without a dependency.

- :func:`notify` sends ``sd_notify`` datagrams (``READY=1``, ``STATUS=...``,
  ``WATCHDOG=1``, ``STOPPING=1``) to ``$NOTIFY_SOCKET``: a filesystem path or, with a
  leading ``@``, an abstract-namespace address. Without the variable it does nothing, so
  the daemon runs the same outside systemd.
- :func:`watchdog_interval` is how often to send ``WATCHDOG=1``: half of
  ``$WATCHDOG_USEC`` (``None`` when the unit has no ``WatchdogSec=``).
- :func:`journal_stream` tells whether stderr goes to the journal (``$JOURNAL_STREAM``),
  where time stamps are added by journald and a ``<N>`` prefix sets the priority.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

__all__ = ["journal_stream", "notify", "watchdog_interval"]

_log = logging.getLogger(__name__)


def _address(value: str) -> str | bytes:
    # "@name" is Linux's abstract namespace: the address starts with a NUL byte.
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def notify(*lines: str) -> bool:
    """Send ``lines`` (``KEY=value`` each) as one datagram to ``$NOTIFY_SOCKET``.

    Returns True when sent, False when there is no socket to send to or sending failed
    (logged at debug level: the service manager may simply not listen).
    """
    target = os.environ.get("NOTIFY_SOCKET")
    if not target or not lines:
        return False
    if not (target.startswith("/") or target.startswith("@")):
        _log.debug("NOTIFY_SOCKET %r is neither a path nor an abstract address", target)
        return False
    payload = "\n".join(lines).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(target))
            sock.sendall(payload)
    except OSError as exc:
        _log.debug("sd_notify to %s failed: %s", target, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, or None.

    ``$WATCHDOG_PID``, when set, must be this process (systemd sets it for the main PID).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        _log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", usec)
        return None
    return value / 2e6 if value > 0 else None


def journal_stream(stream: object = None) -> bool:
    """True when ``stream`` (default: stderr) is the journal stream systemd connected.

    ``$JOURNAL_STREAM`` is ``device:inode`` of that stream; comparing it with the stream's
    own ``fstat`` tells a redirected stderr (``appliance serve 2>file``) apart.
    """
    value = os.environ.get("JOURNAL_STREAM")
    if not value:
        return False
    target = sys.stderr if stream is None else stream
    try:
        device, inode = (int(part) for part in value.split(":", 1))
        st = os.fstat(target.fileno())  # type: ignore[attr-defined]
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)
