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
