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
    err_console.print(f"error: {message}", style="red", markup=False, highlight=False)
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ApplianceError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
