"""What every verb module of the ``appliance`` command shares: the typer ``app``, the
consoles, :func:`fail` and the ``--config`` option; and the ``version`` verb."""

from __future__ import annotations

import typer
from rich.console import Console

from appliance import __version__

__all__ = ["CONFIG_OPTION", "app", "console", "err_console", "fail"]

app = typer.Typer(
    name="appliance",
    help="On-premise SMS appliance: modems, queue, REST API and technician tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
CONFIG_OPTION = typer.Option(None, "--config", "-c", envvar="APPLIANCE_CONFIG", help="Settings file (TOML).")


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
