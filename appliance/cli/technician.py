"""Technician verbs: talk to modems and the PDU planner directly, without the daemon
(``simulate``, ``segments``, ``modems scan``, ``diag``, ``at``, ``send``, ``ussd``).
The port of ``diag``/``at``/``send``/``ussd`` must not be owned by a running worker."""

from __future__ import annotations

import typer

from appliance.cli.common import CONFIG_OPTION, app, console, err_console, fail
from appliance.errors import ApplianceError

__all__ = ["modems_app"]


@app.command()
def simulate(
    count: int = typer.Argument(3, min=1, max=64, help="How many simulated modems to run."),
    persona: str | None = typer.Option(
        None, "--persona", "-p", help="sim800, huawei or quectel (default: cycle through all three)."
    ),
    latency: float = typer.Option(0.0, "--latency", min=0.0, help="Seconds between Ctrl-Z and +CMGS."),
    link_dir: str | None = typer.Option(
        None, "--link-dir", help="Directory for ttyUSB<k> and by-id style symlinks to the ptys."
    ),
) -> None:
    """Run simulated modems on pseudo-terminals and print their device paths until stopped."""
    import signal
    import threading

    from rich.table import Table

    from appliance.modem.simulator import PERSONAS, SimulatorPool

    if persona is not None and persona not in PERSONAS:
        raise fail(f"unknown persona {persona!r}; choose one of {', '.join(sorted(PERSONAS))}")
    personas = (persona,) if persona else ("sim800", "huawei", "quectel")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with SimulatorPool(count, personas=personas, link_dir=link_dir, latency_s=latency) as pool:
            table = Table(title=f"{count} simulated modem(s) — Ctrl-C to stop")
            for column in ("name", "persona", "IMEI", "ICCID", "AT port"):
                table.add_column(column, overflow="fold")
            for modem in pool.modems:
                table.add_row(modem.name, modem.persona, modem.imei, modem.iccid, modem.path)
            console.print(table)
            for modem in pool.modems:
                if len(modem.paths) > 1:
                    console.print(f"{modem.name} ttys: {' '.join(modem.paths)}", markup=False, highlight=False)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("simulated modems stopped")


@app.command()
def segments(
    text: str = typer.Argument(..., help="The message text."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    smart: bool = typer.Option(
        True, "--smart/--no-smart", help="Replace look-alikes (curly quotes, dashes…) by GSM-7."
    ),
    national: str | None = typer.Option(
        None, "--national", metavar="LANGUAGES",
        help="National languages whose 23.038 shift tables may be used when they save parts: "
             "comma-separated (e.g. hindi,tamil), 'all' or 'none'. Default: \\[sms] "
             "national_languages of the settings.",
    ),
    ref_bits: int = typer.Option(8, "--ref-bits", help="Concatenation reference size: 8 or 16."),
    config: str | None = typer.Option(
        None, "--config", "-c", envvar="APPLIANCE_CONFIG", help="Settings file (TOML)."
    ),
) -> None:
    """Show how TEXT is sent: encoding and national tables, parts, characters left,
    replacements, each part."""
    import json

    from rich.table import Table

    from appliance.pdu import NATIONAL_LANGUAGES, PduError, parse_languages, plan

    try:
        if national is None:
            from appliance.config import ConfigError, load_settings

            try:
                languages = tuple(load_settings(config).sms.national_languages)
            except ConfigError as exc:
                raise fail(str(exc)) from None
        elif national.strip().lower() == "all":
            languages = NATIONAL_LANGUAGES
        elif national.strip().lower() in ("", "none"):
            languages = ()
        else:
            languages = parse_languages(n for n in national.split(",") if n.strip())
        result = plan(
            text, concat_ref_bits=ref_bits, smart_encoding=smart, national_languages=languages
        )
    except PduError as exc:
        raise fail(str(exc)) from None
    if as_json:
        doc = {
            "encoding": result.encoding,
            "shift_table": result.shift_table,
            "locking_shift": result.locking_shift,
            "single_shift": result.single_shift,
            "parts": result.total,
            "default_parts": result.default_parts,
            "summary": result.summary,
            "national_languages": list(languages),
            "unit_limit": result.unit_limit,
            "chars_left": result.chars_left,
            "units_per_part": list(result.units_per_part),
            "replacements": [list(r) for r in result.replacements],
            "texts": list(result.parts),
        }
        print(json.dumps(doc, ensure_ascii=False))
        return
    parts = str(result.total)
    if result.default_parts != result.total:
        parts += f" instead of {result.default_parts} without national tables"
    console.print(f"encoding:   {result.encoding_label}", markup=False, highlight=False)
    console.print(f"parts:      {parts}", markup=False, highlight=False)
    console.print(
        f"chars left: {result.chars_left} (of {result.unit_limit} in the last part)",
        markup=False,
        highlight=False,
    )
    if result.replacements:
        shown = ", ".join(f"{a!r} → {b!r}" for a, b in result.replacements)
        console.print(f"replaced:   {shown}", markup=False, highlight=False)
    table = Table("part", "units", "text", show_lines=False)
    for number, (part, units) in enumerate(zip(result.parts, result.units_per_part), 1):
        table.add_row(str(number), f"{units}/{result.unit_limit}", part.replace("\n", "⏎"))
    console.print(table, markup=False)


# modems scan, diag, at, send, ussd: talk to one modem directly (the worker must not own it).
# Every `appliance modems ...` verb is a command of modems_app (the package __init__ mounts it).
modems_app = typer.Typer(help="Find and inspect modems.", no_args_is_help=True)


def _modem_error_line(exc: ApplianceError) -> str:
    return getattr(exc, "message", None) or str(exc)


class _TechnicianSession:
    """Opens PORT for a technician verb; every ApplianceError becomes one error line."""

    def __init__(self, port: str, *, pin: str | None = None, baudrate: int = 115200,
                 timeout: float = 5.0) -> None:
        self.port, self.pin, self.baudrate, self.timeout = port, pin, baudrate, timeout
        self.modem: object | None = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        from appliance.modem.driver import Modem

        try:
            self.modem = Modem.open(self.port, baudrate=self.baudrate, pin=self.pin,
                                    command_timeout=self.timeout,
                                    resync_timeout=max(1.0, min(3.0, self.timeout)))
        except ApplianceError as exc:
            raise fail(_modem_error_line(exc)) from None
        return self.modem

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        if self.modem is not None:
            self.modem.close()  # type: ignore[attr-defined]
        if isinstance(exc, ApplianceError):
            raise fail(_modem_error_line(exc)) from None
        return False


def _ready_modem(modem, port: str, pin: str | None) -> None:  # type: ignore[no-untyped-def]
    """Resync, echo off, SIM unlocked (with a clear line when the SIM wants a PIN)."""
    modem.prepare()
    state = modem.sim_state()
    if state == "SIM PIN" and not pin:
        raise fail(f"the SIM in the modem on {port} needs a PIN: pass --pin PIN")
    modem.unlock_sim()


def _require_network(modem, port: str) -> None:  # type: ignore[no-untyped-def]
    reg = modem.registration()
    if not reg.registered:
        raise fail(f"no network: the modem on {port} is not registered ({reg.status}); "
                   "check the antenna, the SIM and the operator's coverage")


@modems_app.command("scan")
def modems_scan(
    pattern: list[str] | None = typer.Option(
        None, "--pattern", help="Glob of ports to probe (repeatable). Default: \\[discovery] "
        "patterns of the settings (/dev/serial/by-id/*, /dev/ttyUSB*, /dev/ttyACM*)."),
    timeout: float = typer.Option(1.0, "--timeout", min=0.1, help="Seconds per port."),
    show_all: bool = typer.Option(False, "--all", help="Also list ports that stay silent."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    config: str | None = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG",
                                      help="Settings file (TOML): its \\[discovery] patterns."),
) -> None:
    """Probe serial ports and list the modems answering AT: port, model, IMEI, ICCID, SMS."""
    import dataclasses
    import json

    from rich.table import Table

    from appliance.config import ConfigError, load_settings
    from appliance.modem.discovery import discover_modems

    if not pattern:
        try:
            pattern = list(load_settings(config).discovery.patterns)
        except ConfigError as exc:
            raise fail(str(exc)) from None
    probes = discover_modems(pattern, timeout=timeout)
    shown = [p for p in probes if show_all or p.answers_at or p.error]
    if as_json:
        print(json.dumps([dataclasses.asdict(p) for p in shown], ensure_ascii=False))
        return
    if not shown:
        console.print("no modem answered on " + ", ".join(pattern or ["the default ports"]),
                      markup=False, highlight=False)
        return
    table = Table()
    for column in ("port", "manufacturer", "model", "IMEI", "ICCID", "SMS"):
        table.add_column(column, overflow="fold")
    for p in shown:
        ident = p.identity
        sms = "yes" if p.sms_capable else ("—" if not p.answers_at else "no")
        if p.error:
            sms = p.error
        elif not p.answers_at:
            sms = "silent"
        table.add_row(p.path, (ident.manufacturer if ident else None) or "",
                      (ident.model if ident else None) or "", (ident.imei if ident else None) or "",
                      (ident.iccid if ident else None) or "", sms)
    console.print(table, markup=False)


def _sim_health_action(verb: str, name: str, config: str | None, reason: str | None = None) -> None:
    """Pause or resume a SIM in the database: the running daemon (any node) sees it within seconds."""
    from appliance import audit
    from appliance.config import load_settings
    from appliance.queue import make_engine, migrate
    from appliance.queue.sim_health import SimHealth

    try:
        settings = load_settings(config)
        engine = make_engine(settings.appliance.database_url)
        migrate(engine)
        health = SimHealth(engine, settings.health.sim)
        health.check_known(name, [m.name for m in settings.modems])
        if verb == "resume":
            row = health.resume(name, by="cli")
            changed = row is not None
            print(f"{name} resumed: it takes work again" if changed else f"{name} is not paused")
        else:
            row, changed = health.pause(name, by="cli", reason=reason)
            print(f"{name} paused until 'appliance modems resume {name}'" if changed
                  else f"{name} is paused already")
        if changed:
            audit.record(engine, audit.Actor.cli(), audit.Action.MODEM_RESUME if verb == "resume"
                         else audit.Action.MODEM_PAUSE, name, {"reason": row.reason if row is not None else None})
    except ApplianceError as exc:  # an unknown modem, a reason too long, the settings, the database
        raise fail(str(exc)) from None


@modems_app.command("resume")
def modems_resume(
    name: str = typer.Argument(..., help="The modem's name (as in /v1/modems)."),
    config: str | None = CONFIG_OPTION,
) -> None:
    """Resume a SIM paused by its health check (or by an admin)."""
    _sim_health_action("resume", name, config)


@modems_app.command("pause")
def modems_pause(
    name: str = typer.Argument(..., help="The modem's name (as in /v1/modems)."),
    reason: str | None = typer.Option(None, "--reason", help="Shown with the pause."),
    config: str | None = CONFIG_OPTION,
) -> None:
    """Pause a SIM: no new work (the other SIMs take its queue) until 'modems resume'."""
    _sim_health_action("pause", name, config, reason)


@app.command()
def diag(
    port: str = typer.Argument(..., help="Serial port of the modem, e.g. /dev/ttyUSB2."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    pin: str | None = typer.Option(None, "--pin", help="SIM PIN, if the SIM asks for one."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds per AT command."),
) -> None:
    """One-shot report: SIM, signal (dBm, bars), registration, operator, SMSC, storage, identity."""
    import json

    with _TechnicianSession(port, pin=pin, timeout=timeout) as modem:
        _ready_modem(modem, port, pin)
        report = modem.diagnostics()
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    for label, value in report.rows():
        console.print(f"{label:<13} {value}", markup=False, highlight=False)


@app.command()
def at(
    port: str = typer.Argument(..., help="Serial port, e.g. /dev/ttyUSB2."),
    commands: list[str] | None = typer.Argument(
        None, help="Commands to run one after another; none starts the interactive console."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds per command."),
    log: str | None = typer.Option(None, "--log", help="Append the session to this file."),
    baudrate: int = typer.Option(115200, "--baudrate", help="Serial speed."),
) -> None:
    """Run AT commands, or open an interactive AT console (history, timestamps, URCs, log)."""
    from appliance.modem.transport import ATTransport

    transport = ATTransport(port, name=port, baudrate=baudrate)
    try:
        transport.open()
    except ApplianceError as exc:
        raise fail(_modem_error_line(exc)) from None
    console_session = _AtConsole(transport, timeout=timeout, log_path=log)
    try:
        if commands:
            failed = False
            for command in commands:
                failed |= not console_session.run(command, interactive=False)
            if failed:
                raise typer.Exit(1)
        else:
            console_session.interact()
    except ApplianceError as exc:
        raise fail(_modem_error_line(exc)) from None
    finally:
        console_session.close()
        transport.close()


class _AtConsole:
    """The ``appliance at`` console: commands, helpers, URCs printed as they arrive."""

    HELP = ("/cmgs <hexpdu>  send a PDU (prompt and Ctrl-Z done for you)\n"
            "/ctrlz          send Ctrl-Z (end a PDU typed after a > prompt)\n"
            "/esc            send ESC (cancel a > prompt)\n"
            "/help           this text;  /quit or Ctrl-D  leave")

    def __init__(self, transport, *, timeout: float, log_path: str | None) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        self.timeout = timeout
        self.in_prompt = False
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        transport.on_urc = self._urc

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    @staticmethod
    def _now() -> str:
        import datetime

        return datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]

    def _out(self, direction: str, text: str, style: str | None = None) -> None:
        stamp = self._now()
        console.print(f"{stamp} {direction} {text}", style=style, markup=False, highlight=False)
        if self._log is not None:
            self._log.write(f"{stamp} {direction} {text}\n")
            self._log.flush()

    def _urc(self, urc) -> None:  # type: ignore[no-untyped-def]
        self._out("URC", urc.line + (f" | {urc.body}" if urc.body else ""), "cyan")

    def _show(self, response) -> bool:  # type: ignore[no-untyped-def]
        for line in response.lines:
            self._out("<-", line)
        if response.prompt:
            self.in_prompt = True
            self._out("<-", "> (type the PDU, then /ctrlz to send or /esc to cancel)")
            return True
        self.in_prompt = False
        ok = response.ok
        self._out("<-", response.final, None if ok else "red")
        return ok

    def run(self, line: str, *, interactive: bool) -> bool:
        """Run one console line; False when the modem answered with an error."""
        text = line.strip()
        if not text:
            return True
        lowered = text.lower()
        t = self.transport
        if lowered.startswith("/cmgs"):
            pdu = text[5:].strip().replace(" ", "").upper()
            try:
                length = len(pdu) // 2 - 1 - int(pdu[:2], 16)
            except ValueError:
                self._out("!!", "usage: /cmgs <hex PDU including the SMSC field>", "red")
                return False
            self._out("->", f"AT+CMGS={length} + PDU + Ctrl-Z")
            return self._show(t.send_prompted(f"AT+CMGS={length}", pdu, timeout=max(self.timeout, 60)))
        if lowered == "/ctrlz":
            self._out("->", "<Ctrl-Z>")
            return self._show(t.write_raw(b"\x1a", timeout=max(self.timeout, 60)))
        if lowered == "/esc":
            self._out("->", "<ESC>")
            self.in_prompt = False
            try:
                return self._show(t.write_raw(b"\x1b", timeout=min(self.timeout, 2)))
            except ApplianceError:
                return True  # many modems answer ESC with nothing at all
        if lowered in ("/help", "/?"):
            console.print(self.HELP, markup=False, highlight=False)
            return True
        if self.in_prompt and interactive:
            self._out("->", text)
            t.write_raw(text.encode("latin-1"), wait=False)
            return True
        command = text if lowered.startswith("at") else "AT" + text
        self._out("->", command)
        stop = command.upper().startswith("AT+CMGS=")
        return self._show(t.execute(command, timeout=self.timeout, stop_at_prompt=stop))

    def interact(self) -> None:
        import os

        try:
            import readline
        except ImportError:  # pragma: no cover - not on every platform
            readline = None  # type: ignore[assignment]
        history = os.path.expanduser("~/.appliance_at_history")
        if readline is not None:
            try:
                readline.read_history_file(history)
            except OSError:
                pass
        console.print(f"AT console on {self.transport.port} — /help for helpers, Ctrl-D to leave",
                      markup=False, highlight=False)
        try:
            while True:
                try:
                    line = input("> " if self.in_prompt else "AT> ")
                except EOFError:
                    console.print()
                    return
                if line.strip().lower() in ("/quit", "/exit"):
                    return
                try:
                    self.run(line, interactive=True)
                except ApplianceError as exc:
                    self._out("!!", _modem_error_line(exc), "red")
                    if not self.transport.is_open:
                        raise
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass


@app.command()
def send(
    to: str = typer.Argument(..., help="Recipient, e.g. +15551234567."),
    text: str = typer.Argument(..., help="Message text."),
    port: str = typer.Option(..., "--port", help="Serial port of the modem to send through."),
    pin: str | None = typer.Option(None, "--pin", help="SIM PIN, if the SIM asks for one."),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds to wait per part."),
) -> None:
    """Send one SMS directly through one modem (technician test); prints each part's TP-MR."""
    import secrets

    from rich.table import Table

    from appliance.pdu import PduError, encode_submit

    try:
        pdus = encode_submit(to, text, concat_ref=secrets.randbelow(255) + 1)
    except PduError as exc:
        raise fail(str(exc)) from None
    table = Table("part", "encoding", "text", "TP-MR")
    with _TechnicianSession(port, pin=pin) as modem:
        _ready_modem(modem, port, pin)
        modem.initialize(read_stored=False)
        _require_network(modem, port)
        for pdu in pdus:
            mr = modem.send_pdu(pdu, timeout=timeout)
            table.add_row(f"{pdu.part}/{pdu.total}", pdu.encoding, pdu.text.replace("\n", "⏎"),
                          str(mr))
    console.print(table, markup=False)
    console.print(f"sent {len(pdus)} part(s) to {to} via {port}", markup=False, highlight=False)


@app.command()
def ussd(
    port: str = typer.Argument(..., help="Serial port of the modem."),
    code: str = typer.Argument(..., help="USSD code, e.g. *100#."),
    pin: str | None = typer.Option(None, "--pin", help="SIM PIN, if the SIM asks for one."),
    timeout: float = typer.Option(15.0, "--timeout", min=0.5, help="Seconds to wait for the reply."),
) -> None:
    """Send a USSD code (e.g. a prepaid balance query) and print the network's reply."""
    from appliance.modem.errors import UssdError

    with _TechnicianSession(port, pin=pin) as modem:
        _ready_modem(modem, port, pin)
        _require_network(modem, port)
        try:
            reply = modem.ussd(code, timeout=timeout)
        except UssdError as exc:
            if exc.text is None:
                raise
            # Some networks put the answer itself in the line that ends the session.
            err_console.print(f"note: the network ended the USSD session (+CUSD: {exc.status}) "
                              "with this message", style="yellow", markup=False,
                              highlight=False)
            reply = exc.text
    console.print(reply, markup=False, highlight=False)
