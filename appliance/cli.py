"""The ``appliance`` command (typer + rich). docs/architecture.md, "Interfaces", and README.md list the verbs.

Every error the appliance raises on purpose ends as one readable line on stderr and a
non-zero exit code; a traceback means a defect.
"""

from __future__ import annotations

import sys
import time

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
def version(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Also show the revision of this configuration's database."
    ),
) -> None:
    """Print the appliance's version and its database schema revision (head)."""
    from appliance.maintenance import MaintenanceError, database_path, known_revisions, revision_of

    print(__version__)
    head = known_revisions()[-1]
    print(f"schema head: {head}")
    if config is None:
        return
    from appliance.config import load_settings

    database = database_path(load_settings(config).appliance.database_url)
    if not database.exists():
        print(f"database: {database} (not created yet)")
        return
    try:
        revision = revision_of(database)
    except MaintenanceError as exc:
        raise fail(str(exc)) from None
    state = "up to date" if revision == head else (
        "migrated at the next start" if revision in known_revisions() else "NEWER than this code")
    print(f"database: {database} at {revision or 'no schema'} ({state})")


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
             "comma-separated (e.g. hindi,tamil), 'all' or 'none'. Default: [sms] "
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
        None, "--pattern", help="Glob of ports to probe (repeatable). Default: [discovery] "
        "patterns of the settings (/dev/serial/by-id/*, /dev/ttyUSB*, /dev/ttyACM*)."),
    timeout: float = typer.Option(1.0, "--timeout", min=0.1, help="Seconds per port."),
    show_all: bool = typer.Option(False, "--all", help="Also list ports that stay silent."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    config: str | None = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG",
                                      help="Settings file (TOML): its [discovery] patterns."),
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

    from appliance.config import ConfigError
    from appliance.startup import EX_CONFIG, StartupRefused

    try:
        settings = load_settings(config)
    except ConfigError as exc:  # restarting cannot fix a wrong setting: systemd stops trying
        raise fail(str(exc), EX_CONFIG) from None
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    configure_logging(settings.appliance.log_level)

    def ready(url: str) -> None:
        console.print(f"SMS appliance API on {url}  (docs: {url}/docs)", markup=False, highlight=False)

    try:
        run_daemon(settings, simulate=simulate, on_ready=ready)
    except StartupRefused as exc:
        raise fail(f"not starting: {exc}", exc.exit_code) from None


# --------------------------------------------------------------------------- backups

@app.command()
def backup(
    dest: str = typer.Argument(..., help="A file, or a directory (a timestamped name is made in it)."),
    config: str | None = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG",
                                      help="Settings file (TOML)."),
    info: bool = typer.Option(False, "--info", help="DEST is a backup: show what it holds and under "
                                                    "which retention policy it was taken."),
) -> None:
    """Copy the database to DEST, consistently even while the daemon runs; checks the copy.
    The copy notes the [retention] policy in force (shown by --info and by restore)."""
    from pathlib import Path

    from appliance.maintenance import backup_manifest, check_restorable, retention_note

    if info:
        revision = check_restorable(Path(dest))
        manifest = backup_manifest(Path(dest))
        print(f"{dest}: schema {revision}" + (f", taken {manifest['taken_at']}" if "taken_at" in manifest else ""))
        print(retention_note(manifest))
        return
    from appliance.config import load_settings
    from appliance.maintenance import backup as take_backup, database_path

    settings = load_settings(config)
    policy = settings.retention.model_dump(mode="json")
    taken = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = take_backup(database_path(settings.appliance.database_url), Path(dest),
                         manifest={"retention": policy, "taken_at": taken, "version": __version__})
    print(f"backed up {result.messages} message(s), schema {result.revision}, integrity ok")
    print(retention_note(result.manifest))
    print(f"{result.path} {result.size} bytes")


@app.command()
def restore(
    source: str = typer.Argument(..., help="A backup made by 'appliance backup'."),
    config: str | None = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG",
                                      help="Settings file (TOML)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Replace the database by a backup. The daemon must be stopped; the replaced database
    is kept as <db>.before-restore-<time>. An older schema is migrated at the next start."""
    from pathlib import Path

    from appliance.config import load_settings
    from appliance.maintenance import DatabaseLock, backup_manifest, check_restorable, database_path, retention_note
    from appliance.maintenance import restore as restore_backup

    database = database_path(load_settings(config).appliance.database_url)
    holder = DatabaseLock(database).holder()
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise fail(f"{database} is in use by {who} (the appliance daemon?); stop it first, "
                   "e.g. 'systemctl stop appliance'")
    revision = check_restorable(Path(source))
    note = retention_note(backup_manifest(Path(source)))
    print(f"{source}: schema {revision}; the backup's {note}")
    if not yes and not typer.confirm(
            f"Replace {database} by {source} (schema {revision})?", default=False):
        raise fail("restore cancelled")
    result = restore_backup(Path(source), database)
    print(f"restored {database} from {source} (schema {result.revision})")
    if result.previous is not None:
        print(f"the replaced database is kept as {result.previous}")


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
    twilio: bool = typer.Option(
        False, "--twilio", help="A Twilio-compatible credential instead: Account SID + Auth Token and an "
                                "API key SID + secret (scopes default to send and read)."
    ),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Create an API key. The key is printed once, alone on the last line of stdout."""
    if twilio:
        _twilio_create(name, scope or ["send", "read"], config)
        return
    if not scope:
        raise fail("give at least one --scope: send, read or admin (e.g. --scope send --scope read)")
    keys, url = _api_keys(config)
    key, secret = keys.create(name, scope)
    print(f"created key {key.id} {key.name!r} with scopes {', '.join(sorted(key.scopes))} in {url}")
    print("store it now: it is not shown again")
    print(secret)


def _twilio_create(name: str, scopes: list[str], config: str | None) -> None:
    from appliance.twilio import CredentialError, TwilioCredentials

    keys, url = _api_keys(config)
    try:
        issued = TwilioCredentials(keys.engine).create(name, scopes)
    except CredentialError as exc:
        raise fail(str(exc)) from None
    print(f"created key {issued.key_id} {issued.name!r} (Twilio-compatible) with scopes "
          f"{', '.join(sorted(issued.scopes))} in {url}")
    print("store them now: the token and the secret are not shown again")
    print(f"Account SID:    {issued.account_sid}")
    print(f"Auth Token:     {issued.auth_token}")
    print(f"API key SID:    {issued.api_key_sid}")
    print(f"API key secret: {issued.api_key_secret}")


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


# --------------------------------------------------------------------------- web users

users_app = typer.Typer(help="People who sign in to the web pages: create, list, password, disable.",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


def _users(config: str | None):  # type: ignore[no-untyped-def]
    """The Users of the configured database (migrated to the newest schema)."""
    from appliance.config import load_settings
    from appliance.queue import make_engine, migrate
    from appliance.web.users import Users

    settings = load_settings(config)
    engine = make_engine(settings.appliance.database_url)
    migrate(engine)
    return Users(engine)


def _new_password(password_stdin: bool) -> str:
    """The new password: one line of stdin, or asked twice at the terminal (never echoed)."""
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("--password-stdin: stdin held no password")
        return line
    if not sys.stdin.isatty():
        raise fail("no terminal to ask the password on; pipe it in with --password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    username: str = typer.Argument(..., metavar="NAME", help="The user name to sign in with."),
    role: str = typer.Option("staff", "--role", "-r",
                             help="staff (send, read replies, contacts) or admin (also modems, keys, opt-outs)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Create a user for the web pages (asks for the password, at least 10 characters)."""
    users = _users(config)
    user = users.create(username, _new_password(password_stdin), role=role)
    print(f"created {user.role} {user.username!r}; sign in at http://<appliance>:<port>/login")


@users_app.command("list")
def users_list(config: str | None = _CONFIG_OPTION) -> None:
    """List users, their role and last sign-in."""
    from datetime import datetime

    from rich.table import Table

    table = Table("name", "role", "created", "last sign-in", "state")
    stamp = lambda t: "—" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    for u in _users(config).list():
        table.add_row(u.username, u.role, stamp(u.created_at), stamp(u.last_login_at),
                      "disabled" if u.disabled_at else "active")
    console.print(table, markup=False)


@users_app.command("password")
def users_password(
    username: str = typer.Argument(..., metavar="NAME"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Set a user's password (their browsers are signed out)."""
    user = _users(config).set_password(username, _new_password(password_stdin))
    print(f"password of {user.username!r} changed; their sessions are signed out")


@users_app.command("role")
def users_role(
    username: str = typer.Argument(..., metavar="NAME"),
    role: str = typer.Argument(..., help="staff or admin"),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Make a user staff or admin."""
    user = _users(config).set_role(username, role)
    print(f"{user.username!r} is now {user.role}")


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(..., metavar="NAME"),
    enable: bool = typer.Option(False, "--enable", help="Allow the user to sign in again."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Stop a user from signing in (and sign out their browsers); --enable undoes it."""
    users = _users(config)
    user = users.enable(username) if enable else users.disable(username)
    print(f"{user.username!r} is {'disabled' if user.disabled_at else 'active'}")


# --------------------------------------------------------------------------- contacts and broadcasts (issue 6)

contacts_app = typer.Typer(help="Contacts: import and export CSV (through the local REST API).",
                           no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
broadcast_app = typer.Typer(help="Broadcasts: preview, send and follow mass texts (through the local REST API).",
                            no_args_is_help=True)
app.add_typer(broadcast_app, name="broadcast")

_URL_OPTION = typer.Option(None, "--url", help="The API's base URL (default: from the settings' [api]).")
_KEY_OPTION = typer.Option(None, "--key", envvar="APPLIANCE_API_KEY", help="API key (or $APPLIANCE_API_KEY).")
_UPLOAD_LIMIT = 2 * 1024 * 1024


class _Api:
    """A small client of the local REST API: every failure becomes one readable line."""

    def __init__(self, config: str | None, url: str | None, key: str | None) -> None:
        import httpx

        if not key:
            raise fail("give an API key with --key or $APPLIANCE_API_KEY (make one with 'appliance keys create')")
        if url is None:
            from appliance.config import load_settings

            api = load_settings(config).api
            host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
            url = f"http://{host}:{api.port}"
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)

    def call(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the appliance API at {self.url} ({exc}); is 'appliance serve' running?") from None
        if response.status_code >= 400:
            try:
                problem = response.json()
                detail = problem.get("detail") or response.text
            except ValueError:
                detail = response.text.strip() or response.reason_phrase
            raise fail(f"{detail} (HTTP {response.status_code})")
        return response


@contacts_app.command("import")
def contacts_import(
    file: str = typer.Argument(..., metavar="FILE.csv", help="CSV with a header row and a number column."),
    map_: list[str] = typer.Option([], "--map", "-m", help="COLUMN=FIELD (repeat); COLUMN= skips a column."),
    group: str | None = typer.Option(None, "--group", "-g", help="Add every imported contact to this group."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; import nothing."),
    url: str | None = _URL_OPTION,
    key: str | None = _KEY_OPTION,
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Import contacts from a CSV file and print the per-row report.

    Rows with an invalid number or a number seen on an earlier row are skipped; numbers
    that are already contacts are merged. One import takes up to 2 MB (about 40,000
    contacts): split a bigger file.
    """
    from pathlib import Path

    from rich.table import Table

    path = Path(file)
    if not path.is_file():
        raise fail(f"{file}: no such file")
    for item in map_:
        if "=" not in item:
            raise fail(f"--map {item!r}: write COLUMN=FIELD (e.g. --map Mobile=number)")
    api = _Api(config, url, key)
    params: dict[str, object] = {"map": map_, "dry_run": dry_run}
    if group:
        params["group"] = group
    if path.stat().st_size > _UPLOAD_LIMIT:
        raise fail(f"{file} is over {_UPLOAD_LIMIT // (1024 * 1024)} MB, the most one import takes; "
                   "split it into smaller files, each starting with the header line")
    response = api.call("POST", "/v1/contacts/import", params=params, content=path.read_bytes(),
                        headers={"Content-Type": "text/csv"})
    report = response.json()
    verb = "would import" if report["dry_run"] else "imported"
    console.print(
        f"{path.name}: {report['rows']} row(s); {verb}: {report['created']} created, {report['merged']} merged; "
        f"skipped: {report['invalid']} invalid, {report['duplicates']} duplicate"
        + (f"; group {report['group']!r}" if report.get("group") else ""),
        markup=False, highlight=False, soft_wrap=True,
    )
    issues = report["issues"]
    if issues:
        table = Table("row", "status", "number", "detail")
        for issue in issues[:200]:
            table.add_row(str(issue["row"]), issue["status"], issue["number"] or "", issue["detail"])
        console.print(table, markup=False)
        if len(issues) > 200:
            console.print(f"... and {len(issues) - 200} more", markup=False)


@contacts_app.command("export")
def contacts_export(
    file: str = typer.Argument(..., metavar="FILE.csv", help="Where to write ('-' for stdout)."),
    group: str | None = typer.Option(None, "--group", "-g", help="Only this group's members."),
    url: str | None = _URL_OPTION,
    key: str | None = _KEY_OPTION,
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Export contacts as CSV (number, names, free fields, groups); it imports back as is."""
    from pathlib import Path

    api = _Api(config, url, key)
    text = api.call("GET", "/v1/contacts/export", params={"group": group} if group else {}).text
    if file == "-":
        sys.stdout.write(text)
        return
    Path(file).write_text(text, encoding="utf-8", newline="")
    rows = max(0, text.count("\n") - 1)
    err_console.print(f"wrote {rows} contact(s) to {file}", markup=False, highlight=False)


def _print_preview(p: dict) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    enc = ", ".join(f"{n} {e}" for e, n in sorted(p["encodings"].items())) or "none"
    console.print(
        f"recipients: {p['recipients']} ({p['opted_out']} opted out, {p['invalid']} invalid, "
        f"{p['duplicates']} duplicate) → {p['sendable']} to send\n"
        f"parts: {p['parts']} ({enc}; at most {p['max_parts']} per message, limit {p['parts_limit']})\n"
        f"time: {p['estimate']}" + (f"; quiet hours {p['quiet_hours']}" if p.get("quiet_hours") else ""),
        markup=False, highlight=False, soft_wrap=True,
    )
    if p["missing"]:
        missing = ", ".join(f"{{{f}}} for {n}" for f, n in p["missing"].items())
        err_console.print(f"warning: fields missing: {missing} recipient(s)", style="yellow", markup=False)
    if p["unknown_fields"]:
        err_console.print(f"warning: no recipient has {', '.join(p['unknown_fields'])}", style="yellow", markup=False)
    if p["samples"]:
        table = Table("to", "parts", "text", title="samples")
        for s in p["samples"]:
            table.add_row(s["to"], str(s["parts"]), s["body"])
        console.print(table, markup=False)


def _follow(api: _Api, broadcast_id: int) -> dict:  # type: ignore[type-arg]
    """A progress bar until the broadcast is done or cancelled; returns its last state."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    state = api.call("GET", f"/v1/broadcasts/{broadcast_id}").json()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[detail]}"), console=err_console, transient=False) as progress:
        task = progress.add_task(f"broadcast {broadcast_id}", total=state["stats"]["total"], detail="")
        while True:
            stats = state["stats"]
            detail = (f"{state['status']}: sent {stats['sent'] + stats['delivered']}, failed {stats['failed']}, "
                      f"suppressed {stats['suppressed']}")
            if state.get("waiting_for_quiet_hours"):
                detail += " (waiting for quiet hours to end)"
            progress.update(task, completed=stats["done"], detail=detail)
            if state["status"] in ("done", "cancelled"):
                return state
            time.sleep(0.5)
            state = api.call("GET", f"/v1/broadcasts/{broadcast_id}").json()


@broadcast_app.command("send")
def broadcast_send(
    template: str = typer.Option(..., "--template", "-t", help="The text, e.g. 'Hi {first_name|there}!'; "
                                                               "@FILE reads it from a file."),
    group: list[str] = typer.Option([], "--group", "-g", help="Send to this group (repeat for several)."),
    number: list[str] = typer.Option([], "--number", "-n", help="Send to this number (repeat)."),
    csv_file: str | None = typer.Option(None, "--csv", help="Send to the rows of this CSV (number + fields)."),
    kind: str = typer.Option("transactional", "--kind", help="transactional or marketing (quiet hours, footer)."),
    at: str | None = typer.Option(None, "--at", help="Not before this time (ISO 8601 with a timezone)."),
    name: str = typer.Option("", "--name", help="A name to find the broadcast by."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Send even if some recipients lack a field."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Start without asking."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Show progress until the broadcast is done."),
    url: str | None = _URL_OPTION,
    key: str | None = _KEY_OPTION,
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Preview a broadcast, start it (after confirmation or --yes) and show its progress."""
    from datetime import datetime
    from pathlib import Path

    if kind not in ("transactional", "marketing"):
        raise fail(f"--kind {kind!r}: choose transactional or marketing")
    if not (group or number or csv_file):
        raise fail("say who to send to: --group G, --number N or --csv FILE")
    if template.startswith("@"):
        try:
            template = Path(template[1:]).read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise fail(f"{template[1:]}: cannot read the template: {exc.strerror}") from None
    audience: dict[str, object] = {"groups": group, "numbers": number}
    if csv_file is not None:
        try:
            audience["csv"] = Path(csv_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{csv_file}: cannot read it as UTF-8 text: {exc}") from None
    body: dict[str, object] = {"template": template, "audience": audience, "kind": kind, "name": name,
                               "allow_missing": allow_missing}
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise fail(f"--at {at!r} is not an ISO 8601 time (e.g. 2030-01-06T08:00:00+01:00)") from None
        if when.tzinfo is None:
            raise fail(f"--at {at!r}: give a timezone (e.g. +01:00 or Z)")
        body["send_at"] = when.isoformat()
    api = _Api(config, url, key)
    draft = api.call("POST", "/v1/broadcasts", json=body).json()
    bid = draft["id"]
    preview = api.call("GET", f"/v1/broadcasts/{bid}/preview").json()
    _print_preview(preview)
    if not yes and not typer.confirm(f"send broadcast {bid} to {preview['sendable']} recipient(s)?", default=False):
        api.call("POST", f"/v1/broadcasts/{bid}/cancel")
        err_console.print("not sent", markup=False)
        raise typer.Exit(1)
    started = api.call("POST", f"/v1/broadcasts/{bid}/start", json={"allow_missing": allow_missing}).json()
    console.print(f"broadcast {bid} {started['status']}: {started['recipients']} message(s)", markup=False,
                  highlight=False, soft_wrap=True)
    if not wait:
        return
    final = _follow(api, bid)
    s = final["stats"]
    console.print(
        f"broadcast {bid} {final['status']}: {s['sent'] + s['delivered']} sent ({s['delivered']} delivered), "
        f"{s['failed']} failed, {s['unknown']} unknown, {s['suppressed']} suppressed, {s['cancelled']} cancelled",
        markup=False, highlight=False, soft_wrap=True,
    )


def _broadcast_action(action: str, broadcast_id: int, url: str | None, key: str | None, config: str | None) -> None:
    api = _Api(config, url, key)
    state = api.call("POST", f"/v1/broadcasts/{broadcast_id}/{action}").json()
    s = state["stats"] or {}
    console.print(f"broadcast {broadcast_id} {state['status']}: {s.get('done', 0)}/{s.get('total', 0)} done",
                  markup=False, highlight=False)


@broadcast_app.command("pause")
def broadcast_pause(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                    key: str | None = _KEY_OPTION, config: str | None = _CONFIG_OPTION) -> None:
    """Pause a running broadcast (messages being sent finish)."""
    _broadcast_action("pause", broadcast_id, url, key, config)


@broadcast_app.command("resume")
def broadcast_resume(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                     key: str | None = _KEY_OPTION, config: str | None = _CONFIG_OPTION) -> None:
    """Resume a paused broadcast."""
    _broadcast_action("resume", broadcast_id, url, key, config)


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                     key: str | None = _KEY_OPTION, config: str | None = _CONFIG_OPTION) -> None:
    """Cancel what a broadcast still has queued."""
    _broadcast_action("cancel", broadcast_id, url, key, config)


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show progress until it is done."),
    url: str | None = _URL_OPTION, key: str | None = _KEY_OPTION, config: str | None = _CONFIG_OPTION,
) -> None:
    """A broadcast's state and counts."""
    import json

    api = _Api(config, url, key)
    state = _follow(api, broadcast_id) if follow else api.call("GET", f"/v1/broadcasts/{broadcast_id}").json()
    print(json.dumps({k: state[k] for k in ("id", "name", "status", "kind", "recipients", "parts", "stats")},
                     indent=2, default=str))


# --------------------------------------------------------------------------- database: copy to PostgreSQL, check

email_app = typer.Typer(help="Email to SMS: the SMTP side's settings and certificate.", no_args_is_help=True)
app.add_typer(email_app, name="email")


@email_app.command("info")
def email_info(
    config: str | None = _CONFIG_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show the [email] settings (never the relay's password) and the TLS certificate's
    SHA-256 fingerprint; the self-signed certificate is made now if there is none yet."""
    import json

    from appliance.config import load_settings
    from appliance.email.info import describe

    settings = load_settings(config)
    try:
        info = describe(settings, create_cert=True)
    except OSError as exc:
        console.print(f"could not read or make the certificate: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(info))
        return
    for name, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else value)
        print(f"{name:22} {shown}")
    if not settings.email.enabled:
        print("email to SMS is off: set [email] enabled = true and restart the daemon")


db_app = typer.Typer(help="The database: copy an appliance's SQLite data to PostgreSQL, check a database.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def _configured_database_url(config: str | None) -> str:
    from appliance.config import load_settings

    try:
        return load_settings(config).appliance.database_url
    except ApplianceError as exc:
        raise fail(str(exc)) from None


def _print_counts(title: str, counts: dict[str, int]) -> None:
    from rich.table import Table

    table = Table("table", "rows", title=title)
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    console.print(table, markup=False)


@db_app.command("copy")
def db_copy(
    to: str = typer.Option(..., "--to", help="The empty PostgreSQL database to copy into, "
                                             "e.g. postgresql+psycopg://appliance@db-host/appliance."),
    source: str | None = typer.Option(None, "--from", help="The SQLite database to copy "
                                                           "(default: database_url of the settings)."),
    config: str | None = _CONFIG_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Copy without asking."),
    force: bool = typer.Option(False, "--force", help="Copy even though the source's daemon looks alive "
                                                      "(what it writes meanwhile is not copied)."),
) -> None:
    """Copy a stopped appliance's database into an empty PostgreSQL database (verified,
    all or nothing). Then set database_url to the new URL and start the daemon."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from appliance.db.copy import (
        SourceInUse,
        SourceRevisionMismatch,
        TargetNotEmpty,
        WrongEngine,
        check_database,
        copy_database,
        source_in_use,
        url_engine,
    )
    from appliance.db.engine import redact_url

    source_url = source or _configured_database_url(config)
    try:
        if url_engine(to) != "postgresql":
            raise WrongEngine("target", to, "PostgreSQL")
        if url_engine(source_url) != "sqlite":
            raise WrongEngine("source", source_url, "SQLite")
    except ApplianceError as exc:
        raise fail(str(exc)) from None
    try:
        before = check_database(source_url)
    except ApplianceError as exc:
        raise fail(f"source: {exc}") from None
    try:
        target = check_database(to)
    except ApplianceError as exc:
        raise fail(f"target: {exc}") from None
    if not before.up_to_date:
        raise fail(str(SourceRevisionMismatch(before.revision, before.head)))
    in_use = source_in_use(source_url)
    if in_use is not None and not force:
        raise fail(str(SourceInUse(in_use)))
    occupied = next((name for name, rows in target.tables.items() if rows), None)
    if occupied is not None:
        raise fail(str(TargetNotEmpty(to, occupied)))
    total = sum(before.tables.values())
    console.print(f"from: {before.url} ({before.engine} {before.server_version}, schema "
                  f"{before.revision or 'none'}, {total} row(s))", markup=False, highlight=False, soft_wrap=True)
    target_state = (f" ({target.engine} {target.server_version}, "
                    f"{'empty, schema ' + target.revision if target.revision else 'no schema yet'})")
    console.print(f"to:   {redact_url(to)}{target_state}", markup=False, highlight=False, soft_wrap=True)
    if not yes:
        try:
            confirmed = typer.confirm(f"Copy {total} row(s) into {redact_url(to)}?", default=False)
        except typer.Abort:  # stdin closed: nobody to answer
            raise fail("no answer to the question; pass --yes to copy without asking") from None
        if not confirmed:
            raise fail("copy cancelled")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("copying", total=max(total, 1))
        done_before: dict[str, int] = {}

        def progress(table: str, copied: int, rows: int) -> None:
            done_before[table] = copied
            bar.update(task, description=f"copying {table}", completed=sum(done_before.values()))

        try:
            report = copy_database(source_url, to, force=force, progress=progress)
        except ApplianceError as exc:
            raise fail(str(exc)) from None
    if report.forced:
        err_console.print(f"warning: copied although {report.forced} (--force)", style="yellow",
                          markup=False, highlight=False, soft_wrap=True)
    _print_counts("copied", {t.table: t.rows for t in report.tables})
    console.print(f"copied {report.rows} row(s) in {len(report.tables)} tables from {report.source} to "
                  f"{report.target} in {report.seconds:.1f} s; row counts and id checksums verified",
                  markup=False, highlight=False, soft_wrap=True)
    where = config or "the settings file (e.g. /etc/appliance/appliance.toml)"
    console.print(f"next: in [appliance] of {where} set database_url = \"{report.target}\" (with its "
                  "password, if it has one), then start the daemon; keep the SQLite file as a backup",
                  markup=False, highlight=False, soft_wrap=True)


@db_app.command("check")
def db_check(
    config: str | None = _CONFIG_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """The configured database: engine, server version, schema revision, row counts, nodes."""
    import json

    from rich.table import Table

    from appliance.db.copy import check_database

    try:
        report = check_database(_configured_database_url(config))
    except ApplianceError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(report.to_dict()))
        return
    state = "up to date" if report.up_to_date else (
        "no schema yet" if report.revision is None else f"NOT the newest ({report.head})")
    for label, value in (("database", report.url), ("engine", f"{report.engine} {report.server_version}"),
                         ("schema", f"{report.revision or '-'} ({state})")):
        console.print(f"{label:<9} {value}", markup=False, highlight=False, soft_wrap=True)
    if report.missing_tables:
        console.print(f"missing   {', '.join(report.missing_tables)}", markup=False, highlight=False)
    _print_counts("rows", report.tables)
    if not report.nodes:
        console.print("no node has registered in this database yet", markup=False, highlight=False)
        return
    nodes = Table("node", "host", "pid", "version", "heartbeat", "lease", "state", title="nodes")
    for n in report.nodes:
        nodes.add_row(n.name, n.host, str(n.pid), n.version, f"{n.heartbeat_age_s:.0f} s ago",
                      f"{n.lease_s:g} s", n.state)
    console.print(nodes, markup=False)


retention_app = typer.Typer(help="Retention: erase old message bodies and texts, prune old logs.",
                            no_args_is_help=True)
app.add_typer(retention_app, name="retention")


def _migrated_engine(config: str | None):  # type: ignore[no-untyped-def]
    """The settings and the engine of the configured database (migrated to the newest schema)."""
    from appliance.config import load_settings
    from appliance.queue import make_engine, migrate

    try:
        settings = load_settings(config)
        engine = make_engine(settings.appliance.database_url)
        migrate(engine)
    except ApplianceError as exc:
        raise fail(str(exc)) from None
    return settings, engine


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be erased or pruned."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Erase bodies older than [retention] body_days, prune events and send-log rows older
    than log_days (never those the rate caps count), once, now."""
    from appliance.retention import Retention

    settings, engine = _migrated_engine(config)
    report = Retention(engine, settings.retention).run(dry_run=dry_run)
    verb = "would erase/prune" if dry_run else "erased/pruned"
    labels = {"message_bodies": "message bodies", "inbound_bodies": "inbound texts", "events": "events",
              "send_log": "send-log rows", "webhook_payloads": "inbound webhook payloads", "emails": "mails",
              "email_threads": "email threads", "fragments": "waiting multipart parts"}
    for name, count in report.counts().items():
        print(f"{verb} {count:>8} {labels[name]}")


privacy_app = typer.Typer(help="Per-number privacy requests: export or erase what is stored about a number.",
                          no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


def _e164(settings, raw: str) -> str:  # type: ignore[no-untyped-def]
    from appliance.numbers import InvalidNumber, to_e164

    try:
        return to_e164(raw, settings.appliance.default_region)
    except InvalidNumber as exc:
        raise fail(f"NUMBER: {exc}") from None


@privacy_app.command("export")
def privacy_export(
    number: str = typer.Argument(..., help="The number as people type it, e.g. '+1 415 555 0100'."),
    config: str | None = _CONFIG_OPTION,
) -> None:
    """Print as JSON every message to the number, every text from it, its contact record
    and its consent history."""
    import json

    from appliance.privacy import export_number

    settings, engine = _migrated_engine(config)
    print(json.dumps(export_number(engine, _e164(settings, number)), indent=2, ensure_ascii=False))


@privacy_app.command("erase")
def privacy_erase(
    number: str = typer.Argument(..., help="The number as people type it, e.g. '+1 415 555 0100'."),
    config: str | None = _CONFIG_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Erase without asking."),
) -> None:
    """Delete the number's contact, cancel what is queued to it and erase the bodies of its
    messages and texts. An opted-out number stays opted out; the consent log stays."""
    from appliance.privacy import erase_number

    settings, engine = _migrated_engine(config)
    e164 = _e164(settings, number)
    if not yes:
        try:
            confirmed = typer.confirm(f"Erase what is stored about {e164}?", default=False)
        except typer.Abort:
            raise fail("no answer to the question; pass --yes to erase without asking") from None
        if not confirmed:
            raise fail("erase cancelled")
    r = erase_number(engine, e164, by="cli")
    print(f"{e164}: contact {'deleted' if r.contact_deleted else 'none'}, {r.messages_cancelled} queued "
          f"message(s) cancelled, {r.message_bodies} message bodies and {r.inbound_bodies} inbound texts erased"
          f" ({r.webhook_payloads} webhook payloads, {r.emails} mails, {r.fragments} waiting parts)"
          + ("; still on the opt-out list" if r.still_opted_out else ""))


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
