"""The fault layer of the simulator: what tests inject on top of a well-behaved modem.

:class:`FaultyModem` stacks on :class:`~appliance.modem.simulator.commands.AtModem` and only
overrides its two hooks: queued CMS errors answer sends (:meth:`FaultyModem.fail_sends`), and
recorded replies answer command lines (:meth:`FaultyModem.script_reply`). It adds hangs,
garbage on the wire and a storage filled behind the client's back. Unplug/replug are the
pty layer's; network, signal, PIN and storage capacity are modem state
(:class:`~appliance.modem.simulator.commands.AtModem`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.modem.simulator.commands import AtModem
from appliance.modem.simulator.pty import Port, SimulatorError

__all__ = ["FaultyModem"]


@dataclass(slots=True)
class _Script:
    """A recorded answer: text or bytes to write, floats are pauses in seconds."""

    chunks: tuple[str | bytes | float, ...]
    times: int | None


class FaultyModem(AtModem):
    """An :class:`AtModem` that fails, hangs and misbehaves on request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fail_codes: deque[int] = deque()
        self._fail_always: int | None = None
        self._scripts: dict[str, _Script] = {}

    # ------------------------------------------------------------------ hooks

    def intercept_line(self, port: Port, line: str) -> bool:
        key = line.upper()
        script = self._scripts.get(key)
        if script is None:
            return False
        if script.times is not None:
            script.times -= 1
            if script.times <= 0:
                del self._scripts[key]
        delay = 0.0
        for chunk in script.chunks:
            if isinstance(chunk, (int, float)):
                delay += float(chunk)
                continue
            data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
            if delay <= 0:
                self.write_port(port, data)
            else:
                self.schedule(delay, lambda data=data: self.write_port(port, data))
        return True

    def send_failure(self, to: str) -> int | None:
        return self._fail_codes.popleft() if self._fail_codes else self._fail_always

    # ------------------------------------------------------------------ faults

    def fail_sends(self, cms_code: int, count: int | None = 1) -> None:
        """Answer the next ``count`` sends (after Ctrl-Z) with ``+CMS ERROR: cms_code``;
        ``count=None``: every send from now on (a SIM out of credit), until
        :meth:`stop_failing`."""
        with self.lock:
            if count is None:
                self._fail_always = cms_code
            else:
                self._fail_codes.extend([cms_code] * count)

    def stop_failing(self) -> None:
        """Forget every :meth:`fail_sends`: sends succeed again."""
        with self.lock:
            self._fail_codes.clear()
            self._fail_always = None

    def hang(self, seconds: float) -> None:
        """Go silent: read and drop everything, answer nothing (URCs included) for ``seconds``."""
        with self.lock:
            self.mute(seconds)
            self.discard_input()
            self.log.info("hanging for %.2f s", seconds)

    def inject_garbage(self, data: bytes) -> None:
        """Write raw bytes to the AT port now (ignores hang)."""
        with self.lock:
            port = self.at_port()
            if not port.open:
                raise SimulatorError(f"simulated modem {self.name} is unplugged")
            self.write_port(port, data, force=True)
            self.flush_port(port)

    def fill_storage(self, sender: str, prefix: str = "fill") -> list[str]:
        """Fill the receive storage with SMS from ``sender`` whose indications were lost
        (texts ``"<prefix> 1"``, ``"<prefix> 2"``, ...), so the modem announces it full.
        Returns the texts stored."""
        texts: list[str] = []
        with self.lock:
            while not self.storage_full():
                texts.append(f"{prefix} {len(texts) + 1}")
                self.deliver_sms(sender, texts[-1], direct=False, announce=False)
        return texts

    def script_reply(
        self,
        command: str,
        reply: str | bytes | Sequence[str | bytes | float],
        *,
        times: int | None = None,
    ) -> None:
        """Answer the command line ``command`` with a recorded ``reply`` instead of the
        persona's own answer (``times`` times, or always with ``None``).

        ``command`` is compared with the received line from its ``AT`` on, ignoring case
        and blanks at the ends. ``reply`` is written exactly as given — ``\\r\\n`` framing,
        echo, URCs and the final result code included, as the modem printed them; a
        sequence mixes text (or bytes) with pauses in seconds, e.g. ``["\\r\\nOK\\r\\n", 0.1,
        "\\r\\n+CUSD: 0,\\"Hello\\",15\\r\\n"]``. Text is sent as UTF-8. State is not touched:
        a scripted ``AT+CMGD=1`` deletes nothing.
        """
        chunks: tuple[str | bytes | float, ...] = (
            (reply,) if isinstance(reply, (str, bytes)) else tuple(reply))
        if times is not None and times < 1:
            raise SimulatorError(f"a scripted reply must be played at least once, not {times}")
        with self.lock:
            self._scripts[command.strip().upper()] = _Script(chunks, times)

    def clear_scripts(self) -> None:
        """Forget every :meth:`script_reply`: the persona answers again."""
        with self.lock:
            self._scripts.clear()
