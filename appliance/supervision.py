"""Keeps systemd told how the daemon is (``Type=notify``, ``WatchdogSec=``).

:class:`Supervisor` runs as a task on uvicorn's event loop, next to the server:

- ``READY=1`` once the API listens (the modems were started before; they may still be
  coming online), with a first ``STATUS=`` line;
- ``STATUS=2/3 modems online, 14 queued`` (``3/3 modems online (1 paused), …`` with a SIM
  paused by its health check) whenever it changes (checked every few seconds);
- ``WATCHDOG=1`` every ``WATCHDOG_USEC/2``, but only while the loop runs this task (a
  blocked loop stops the feed) and no worker thread is dead or stuck
  (:func:`appliance.health.liveness_problems`): systemd then aborts and restarts us;
- ``STOPPING=1`` when the server begins to shut down.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from appliance import systemd
from appliance.health import liveness_problems, queue_depth

__all__ = ["Supervisor"]

_log = logging.getLogger(__name__)


class Supervisor:
    """Notifies systemd about ``services`` (the running appliance) served by ``server``.

    ``watchdog_s`` defaults to :func:`appliance.systemd.watchdog_interval` (None: no
    watchdog); ``status_every_s`` is how often the status line is recomputed.
    """

    def __init__(self, services: Any, *, watchdog_s: float | None = None,
                 status_every_s: float = 5.0) -> None:
        self.services = services
        self.watchdog_s = watchdog_s if watchdog_s is not None else systemd.watchdog_interval()
        self.status_every_s = status_every_s
        self.ready = False
        self.fed = 0  # WATCHDOG=1 pings sent
        self._status: str | None = None
        self._problems: list[str] = []

    def status_line(self) -> str:
        """``2/3 modems online, 14 queued`` (reads the database: call off the loop)."""
        modems = list(self.services.modems)
        online = sum(1 for m in modems if m.online)
        try:
            queued = f"{queue_depth(self.services.queue.engine)} queued"
        except Exception as exc:  # the status line must not fail; /healthz tells the details
            queued = f"database error: {exc.__class__.__name__}"
        paused_of = getattr(self.services.dispatcher, "paused", None)  # SIM health, as last read
        paused = len(paused_of()) if callable(paused_of) else 0
        line = f"{online}/{len(modems)} modems online{f' ({paused} paused)' if paused else ''}, {queued}"
        problems = self._problems
        if problems:
            line += f"; {problems[0]}"
        return line

    def problems(self) -> list[str]:
        """Why the watchdog is not fed right now ([] when all is well)."""
        return liveness_problems(self.services.dispatcher, list(self.services.modems))

    async def _update_status(self) -> None:
        line = await asyncio.to_thread(self.status_line)
        if line != self._status:
            self._status = line
            systemd.notify(f"STATUS={line}")

    async def run(self, server: Any) -> None:
        """Wait for ``server`` (a uvicorn Server) to listen, then notify until cancelled."""
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        line = await asyncio.to_thread(self.status_line)
        self._status = line
        systemd.notify("READY=1", f"STATUS={line}")
        self.ready = True
        _log.info("ready: %s", line)
        loop = asyncio.get_running_loop()
        # Liveness is checked at least once a second; a ping goes out every watchdog_s.
        tick = min(self.watchdog_s or 1.0, self.status_every_s, 1.0)
        next_status = loop.time() + self.status_every_s
        next_feed = loop.time()
        status_task: asyncio.Task[None] | None = None
        try:
            while not server.should_exit:
                problems = self.problems()
                if problems != self._problems:
                    if problems:
                        _log.error("watchdog not fed: %s", "; ".join(problems))
                    else:
                        _log.info("watchdog: all workers alive again")
                    self._problems = problems
                if self.watchdog_s and not problems and loop.time() >= next_feed:
                    systemd.notify("WATCHDOG=1")
                    self.fed += 1
                    next_feed = loop.time() + self.watchdog_s
                if loop.time() >= next_status and (status_task is None or status_task.done()):
                    status_task = asyncio.create_task(self._update_status())
                    next_status = loop.time() + self.status_every_s
                await asyncio.sleep(tick)
        finally:
            if status_task is not None:
                status_task.cancel()
            systemd.notify("STOPPING=1", "STATUS=stopping")

    async def serve(self, server: Any, sockets: list[socket.socket] | None = None) -> None:
        """Run ``server`` with this supervisor on the same loop."""
        task = asyncio.create_task(self.run(server), name="systemd-supervisor")
        try:
            await server.serve(sockets=sockets)
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def run_server(self, server: Any, sockets: list[socket.socket] | None = None) -> None:
        """Like ``server.run()`` (same loop factory), with the supervisor alongside."""
        loop_factory = server.config.get_loop_factory()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(self.serve(server, sockets))
