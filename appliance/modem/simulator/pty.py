"""The pty layer of the simulator: one USB device's ttys, their links and the serving thread.

:class:`PtyDevice` opens real pseudo-terminals (one per tty of the simulated USB device), puts
them in raw mode and serves their master side from one thread, with timers. It knows nothing
of AT commands: bytes read from a tty go to :meth:`PtyDevice.handle_bytes` (the hook a
subclass overrides, like pyserial's ``Protocol.data_received``), and a fresh plug-in calls
:meth:`PtyDevice.handle_plug`. Everything runs under :attr:`PtyDevice.lock`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from appliance.errors import ApplianceError

__all__ = ["MAX_OUT", "Port", "PtyDevice", "SimulatorError"]

MAX_OUT = 1 << 20
"""Bytes kept for a client that does not read (the oldest are dropped, like a full FIFO)."""

# Process-wide: a replugged device gets a new ttyUSB<k> name, as under udev.
_counter_lock = threading.Lock()
_tty_numbers = itertools.count()


def _next_tty_number() -> int:
    with _counter_lock:
        return next(_tty_numbers)


class SimulatorError(ApplianceError):
    """The simulator was asked something it cannot do (not started, unplugged, no such MR)."""


@dataclass(slots=True)
class Port:
    """One tty of the device: its pty pair, links and pending output."""

    index: int
    role: str  # "at", "ident", "silent"
    master: int = -1
    slave: int = -1
    device: str = ""
    tty_link: str | None = None
    by_id_link: str | None = None
    out: bytearray = field(default_factory=bytearray)

    @property
    def open(self) -> bool:
        return self.master >= 0

    @property
    def path(self) -> str:
        return self.tty_link or self.device


class PtyDevice:
    """A USB device with one pty per entry of ``roles``; ``at_index`` is its AT port.

    With ``link_dir`` every tty also gets a ``ttyUSB<k>`` symlink (a new ``k`` at each replug,
    as udev does) and a by-id symlink ``<by_id_stem>-if0<i>-port0`` (stable across replugs).
    Subclasses override :meth:`handle_bytes` (and :meth:`handle_plug` for boot lines).
    """

    def __init__(
        self,
        name: str,
        roles: tuple[str, ...],
        *,
        at_index: int,
        link_dir: str | os.PathLike[str] | None,
        by_id_stem: str,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.name = name
        self.log = log
        self.lock = threading.RLock()
        """Guards all device and modem state; held while hooks run."""
        self.ports: list[Port] = []
        self._roles = roles
        self._at_index = at_index
        self._link_dir = Path(link_dir) if link_dir is not None else None
        self._by_id_stem = by_id_stem
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._started = False
        self._stopping = False
        self._plugged = False
        self._timers: list[tuple[float, int, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._gen = 0
        self._mute_until = 0.0
        self._deaf_until = 0.0

    # ------------------------------------------------------------------ hooks

    def handle_bytes(self, port: Port, data: bytes) -> None:
        """Bytes a client wrote to ``port`` (not called for silent ports or while muted)."""

    def handle_plug(self) -> None:
        """The device was just plugged in (or powered up): reset state, send boot lines."""

    # ------------------------------------------------------------------ public surface

    @property
    def path(self) -> str:
        """The AT port clients open (still given after :meth:`unplug`/:meth:`stop`, so
        tests can check that it vanished)."""
        return self.at_port().path

    @property
    def paths(self) -> list[str]:
        """Every tty of the device, in interface order; :attr:`path` is one of them."""
        self.at_port()
        return [p.path for p in self.ports]

    @property
    def by_id_path(self) -> str | None:
        """The by-id style link of the AT port (``None`` without ``link_dir``)."""
        return self.at_port().by_id_link

    @property
    def plugged(self) -> bool:
        return self._plugged

    def start(self) -> Self:
        """Open the ptys, send the boot lines and start serving. Returns ``self``."""
        with self.lock:
            if self._started:
                raise SimulatorError(f"simulated modem {self.name} is already started")
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._started = True
            self._stopping = False
            self._plug(new_path=True)
            self._thread = threading.Thread(target=self._serve, name=f"simulator-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the ptys and remove the links. Safe to call twice."""
        with self.lock:
            if not self._started or self._stopping:
                return
            self._stopping = True
            self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self.lock:
            self.close_ports()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1
            self._started = False
        self.log.info("stopped")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def unplug(self) -> None:
        """Pull the device: the ptys close (clients get EIO) and their paths and links vanish."""
        with self.lock:
            self._require_started()
            if not self._plugged:
                return
            self.close_ports()
            self.wake()
        self.log.info("unplugged")

    def replug(self, new_path: bool = True) -> None:
        """Plug the device back in: fresh ptys, boot lines, state as after power-up.

        Storage, the MR counter and the send log are kept. With ``new_path`` the ``ttyUSB``
        links get new numbers (without ``link_dir`` the pty path is whatever the kernel
        gives, usually a new one); the by-id link keeps its name.
        """
        with self.lock:
            self._require_started()
            if self._plugged:
                self.close_ports()
            self._plug(new_path=new_path)
            self.wake()
        self.log.info("replugged on %s", self.path)

    # ------------------------------------------------------------------ for the layers above

    def at_port(self) -> Port:
        """The AT/SMS tty (raises :class:`SimulatorError` before :meth:`start`)."""
        if not self.ports:
            raise SimulatorError(f"simulated modem {self.name} is not started")
        return self.ports[self._at_index]

    def muted(self) -> bool:
        """True while the device neither reads nor writes (a hang or a reboot)."""
        return time.monotonic() < max(self._mute_until, self._deaf_until)

    def mute(self, seconds: float) -> None:
        """Read and drop everything, write nothing, for ``seconds`` (pending output is lost)."""
        self._mute_until = time.monotonic() + seconds
        for port in self.ports:
            port.out.clear()

    def deafen(self, seconds: float) -> None:
        """Like :meth:`mute` (output kept) and cancel timers: a reboot in progress."""
        self._gen += 1
        self._deaf_until = time.monotonic() + seconds

    def hear(self) -> None:
        """End a :meth:`deafen` early (the reboot finished)."""
        self._deaf_until = 0.0

    def write_port(self, port: Port, data: bytes, *, force: bool = False) -> None:
        """Queue ``data`` for the client of ``port`` (dropped while muted unless ``force``)."""
        if not port.open:
            return
        if not force and self.muted():
            return
        port.out += data
        if len(port.out) > MAX_OUT:
            del port.out[: len(port.out) - MAX_OUT]

    def flush_port(self, port: Port) -> None:
        """Write what the client of ``port`` can take now (the rest waits for POLLOUT)."""
        while port.out and port.open:
            try:
                n = os.write(port.master, port.out)
            except BlockingIOError:  # the client is not reading: poll() waits for POLLOUT
                if threading.current_thread() is not self._thread:
                    self.wake()
                return
            except OSError as exc:
                self.log.debug("write failed on tty %d: %s", port.index, exc)
                port.out.clear()
                return
            del port.out[:n]

    def flush_all(self) -> None:
        for port in self.ports:
            self.flush_port(port)

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` (under the lock) after ``delay`` s, unless the device is unplugged,
        replugged or rebooted first."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), self._gen, fn))
        self.wake()

    def wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def close_ports(self) -> None:
        """Close every tty (the device vanishes); cancels pending timers."""
        for port in self.ports:
            self._close_port(port)
        self._plugged = False
        self._gen += 1

    # ------------------------------------------------------------------ ptys and links

    def _require_started(self) -> None:
        if not self._started:
            raise SimulatorError(f"simulated modem {self.name} is not started")

    def _plug(self, *, new_path: bool) -> None:
        old = self.ports
        ports: list[Port] = []
        try:
            for i, role in enumerate(self._roles):
                port = Port(index=i, role=role)
                ports.append(port)
                port.master, port.slave = os.openpty()
                tty.setraw(port.slave)
                os.set_blocking(port.master, False)
                port.device = os.ttyname(port.slave)
                if self._link_dir is not None:
                    tty_name = None
                    if not new_path and i < len(old) and old[i].tty_link:
                        tty_name = Path(old[i].tty_link).name
                    tty_name = tty_name or f"ttyUSB{_next_tty_number()}"
                    port.tty_link = self._link(tty_name, port.device)
                    port.by_id_link = self._link(f"{self._by_id_stem}-if{i:02d}-port0", port.device)
        except OSError as exc:
            for port in ports:
                self._close_port(port)
            raise SimulatorError(f"{self.name}: cannot create a pseudo-terminal: {exc}") from exc
        self.ports = ports
        self._plugged = True
        self._gen += 1
        self._mute_until = 0.0
        self._deaf_until = 0.0
        self.handle_plug()

    def _link(self, name: str, target: str) -> str:
        assert self._link_dir is not None
        self._link_dir.mkdir(parents=True, exist_ok=True)
        link = self._link_dir / name
        tmp = self._link_dir / f".{name}.{os.getpid()}.tmp"
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        os.symlink(target, tmp)
        os.replace(tmp, link)
        return str(link)

    def _close_port(self, port: Port) -> None:
        for link in (port.tty_link, port.by_id_link):
            if link:
                try:
                    if os.path.islink(link) and os.readlink(link) == port.device:
                        os.unlink(link)
                except OSError:
                    pass
        for attr in ("master", "slave"):
            fd = getattr(port, attr)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(port, attr, -1)
        port.out.clear()

    # ------------------------------------------------------------------ serving thread

    def _serve(self) -> None:
        while True:
            try:
                if not self._serve_once():
                    return
            except Exception:  # the simulator must outlive any client misbehaviour
                self.log.exception("simulator loop error (continuing)")
                time.sleep(0.01)

    def _serve_once(self) -> bool:
        with self.lock:
            if self._stopping:
                return False
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            for port in self.ports:
                if port.open:
                    poller.register(port.master, select.POLLIN | (select.POLLOUT if port.out else 0))
            timeout_ms: int | None = None
            if self._timers:
                timeout_ms = max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)
        try:
            events = poller.poll(timeout_ms)
        except InterruptedError:
            events = []
        with self.lock:
            if self._stopping:
                return False
            by_fd = {p.master: p for p in self.ports if p.open}
            for fd, ev in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
                    continue
                port = by_fd.get(fd)
                if port is None:  # closed (unplugged) since poll() was set up
                    continue
                if ev & select.POLLOUT:
                    self.flush_port(port)
                if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
                    try:
                        data = os.read(fd, 4096)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self.log.debug("read failed on tty %d: %s", port.index, exc)
                        time.sleep(0.005)
                        continue
                    if data and port.role != "silent" and not self.muted():
                        self.handle_bytes(port, data)
            self._run_timers()
            self.flush_all()
        return True

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, gen, fn = heapq.heappop(self._timers)
            if gen == self._gen and self._plugged:
                fn()
