"""The ``appliance`` command (typer + rich). DESIGN §4 lists the verbs.

Every error the appliance raises on purpose ends as one readable line on stderr and a
non-zero exit code; a traceback means a defect.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from appliance import __version__
from appliance.errors import ApplianceError

app = typer.Typer(
    name="appliance",
    help="On-premise SMS appliance: modems, queue, REST API and technician tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    err_console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.callback()
def _root() -> None:
    """On-premise SMS appliance: modems, queue, REST API and technician tools."""


@app.command()
def version() -> None:
    """Print the appliance's version."""
    console.print(__version__)


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
    national: bool = typer.Option(
        False, "--national", help="Allow Turkish/Spanish/Portuguese shift tables if they save parts."
    ),
    ref_bits: int = typer.Option(8, "--ref-bits", help="Concatenation reference size: 8 or 16."),
) -> None:
    """Show how TEXT is sent: encoding, parts, characters left, replacements, each part."""
    import json

    from rich.table import Table

    from appliance.pdu import PduError, plan

    try:
        result = plan(
            text, concat_ref_bits=ref_bits, smart_encoding=smart, national_tables=national
        )
    except PduError as exc:
        raise fail(str(exc)) from None
    if as_json:
        doc = {
            "encoding": result.encoding,
            "shift_table": result.shift_table,
            "parts": result.total,
            "unit_limit": result.unit_limit,
            "chars_left": result.chars_left,
            "units_per_part": list(result.units_per_part),
            "replacements": [list(r) for r in result.replacements],
            "texts": list(result.parts),
        }
        print(json.dumps(doc, ensure_ascii=False))
        return
    encoding = result.encoding.upper().replace("GSM7", "GSM-7").replace("UCS2", "UCS-2")
    if result.shift_table:
        encoding += f" ({result.shift_table} shift table)"
    console.print(f"encoding:   {encoding}", markup=False, highlight=False)
    console.print(f"parts:      {result.total}", markup=False, highlight=False)
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


# --------------------------------------------------------------------------- technician verbs
# modems scan, diag, at, send, ussd: talk to one modem directly (the worker must not own it).

modems_app = typer.Typer(help="Find and inspect modems.", no_args_is_help=True)
app.add_typer(modems_app, name="modems")


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
        None, "--pattern", help="Glob of ports to probe (repeatable). Default: "
        "/dev/serial/by-id/*, /dev/ttyUSB*, /dev/ttyACM*."),
    timeout: float = typer.Option(1.0, "--timeout", min=0.1, help="Seconds per port."),
    show_all: bool = typer.Option(False, "--all", help="Also list ports that stay silent."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Probe serial ports and list the modems answering AT: port, model, IMEI, ICCID, SMS."""
    import dataclasses
    import json

    from rich.table import Table

    from appliance.modem.discovery import discover_modems

    probes = discover_modems(pattern or None, timeout=timeout)
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
    for label, value in _diag_rows(report):
        console.print(f"{label:<13} {value}", markup=False, highlight=False)


def _diag_rows(report) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    ident, sig, reg = report.identity, report.signal, report.registration
    signal = "unknown"
    if sig is not None and sig.dbm is not None:
        signal = f"{sig.dbm} dBm, {sig.bars}/5 bars (rssi {sig.rssi})"
    registration = "unknown"
    if reg is not None:
        registration = reg.status + (f" ({reg.technology})" if reg.technology else "")
        if reg.lac or reg.cell_id:
            registration += f", LAC {reg.lac or '?'} cell {reg.cell_id or '?'}"
    storage = ", ".join(f"{s.role} {s.memory} {s.used}/{s.total}" for s in report.storage)
    return [
        ("port", report.port),
        ("SIM", report.sim_state),
        ("signal", signal),
        ("registration", registration),
        ("operator", report.operator or "—"),
        ("SMSC", report.smsc or "—"),
        ("storage", storage or "—"),
        ("manufacturer", ident.manufacturer or "—"),
        ("model", ident.model or "—"),
        ("firmware", ident.firmware or "—"),
        ("IMEI", ident.imei or "—"),
        ("IMSI", ident.imsi or "—"),
        ("ICCID", ident.iccid or "—"),
        ("own number", ident.own_number or "—"),
        ("CNMI", report.cnmi or "—"),
    ]


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
    with _TechnicianSession(port, pin=pin) as modem:
        _ready_modem(modem, port, pin)
        _require_network(modem, port)
        reply = modem.ussd(code, timeout=timeout)
    console.print(reply, markup=False, highlight=False)


@app.command()
def serve(
    config: str | None = typer.Option(
        None, "--config", "-c", envvar="APPLIANCE_CONFIG", help="Settings file (TOML)."
    ),
    simulate: int = typer.Option(
        0, "--simulate", min=0, max=64, help="Add N simulated modems (the demo)."
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (overrides [api] host)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (overrides [api] port)."),
) -> None:
    """The daemon: REST API, dispatcher and one worker per modem, until SIGTERM/Ctrl-C."""
    from appliance.config import load_settings
    from appliance.daemon import configure_logging, serve as run_daemon

    settings = load_settings(config)
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    configure_logging(settings.appliance.log_level)

    def ready(url: str) -> None:
        console.print(f"SMS appliance API on {url}  (docs: {url}/docs)", markup=False, highlight=False)

    run_daemon(settings, simulate=simulate, on_ready=ready)


# --------------------------------------------------------------------------- API keys

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

_CONFIG_OPTION = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG", help="Settings file (TOML).")


def _api_keys(config: str | None):  # type: ignore[no-untyped-def]
    """The ApiKeys of the configured database (migrated to the newest schema)."""
    from appliance.api.keys import ApiKeys
    from appliance.config import load_settings
    from appliance.queue import make_engine, migrate

    settings = load_settings(config)
    engine = make_engine(settings.appliance.database_url)
    migrate(engine)
    return ApiKeys(engine), settings.appliance.database_url


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="Who or what uses the key, e.g. 'crm'."),
    scope: list[str] = typer.Option(
        [], "--scope", "-s", help="send, read or admin (admin allows everything); repeat for several."
    ),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Create an API key. The key is printed once, alone on the last line of stdout."""
    if not scope:
        raise fail("give at least one --scope: send, read or admin (e.g. --scope send --scope read)")
    keys, url = _api_keys(config)
    key, secret = keys.create(name, scope)
    print(f"created key {key.id} {key.name!r} with scopes {', '.join(sorted(key.scopes))} in {url}")
    print("store it now: it is not shown again")
    print(secret)


@keys_app.command("list")
def keys_list(
    config: str | None = _CONFIG_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List API keys (never their secrets)."""
    import json

    from rich.table import Table

    keys, _ = _api_keys(config)
    listed = keys.list()
    if as_json:
        print(json.dumps([
            {"id": k.id, "name": k.name, "scopes": sorted(k.scopes), "created_at": k.created_at.isoformat(),
             "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
             "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
            for k in listed
        ]))
        return
    if not listed:
        console.print("no API keys; make one with 'appliance keys create NAME --scope ...'")
        return
    table = Table("id", "name", "scopes", "created", "last used", "revoked")
    stamp = "%Y-%m-%d %H:%M"
    for k in listed:
        table.add_row(
            k.id, k.name, ",".join(sorted(k.scopes)), k.created_at.strftime(stamp),
            k.last_used_at.strftime(stamp) if k.last_used_at else "-",
            k.revoked_at.strftime(stamp) if k.revoked_at else "-",
        )
    console.print(table, markup=False)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., metavar="ID", help="The key's id (see 'appliance keys list')."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    keys, _ = _api_keys(config)
    key = keys.revoke(key_id)
    print(f"revoked key {key.id} {key.name!r}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ApplianceError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
