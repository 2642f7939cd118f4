"""The ``appliance`` command (typer + rich). docs/architecture.md, "Interfaces", and README.md list the verbs.

Every error the appliance raises on purpose ends as one readable line on stderr and a
non-zero exit code; a traceback means a defect. The verbs live by job:

- :mod:`appliance.cli.technician` — ``simulate``, ``segments``, ``modems ...``, ``diag``,
  ``at``, ``send``, ``ussd`` (a modem or the PDU planner, directly);
- :mod:`appliance.cli.admin` — ``serve``, ``backup``, ``restore``, ``keys``, ``users``,
  ``email``, ``db``, ``retention``, ``privacy`` (this appliance's settings and database);
- :mod:`appliance.cli.client` — ``contacts``, ``broadcast`` (through the local REST API).

A new verb goes in its job's module (``@app.command()`` or ``@<group>_app.command(...)``);
a new group of verbs is added to ``app`` below, where the help lists it.
"""

from __future__ import annotations

import sys

# The help lists the plain verbs in the order their modules register them: technician first.
from appliance.cli.technician import modems_app  # isort: skip
from appliance.cli.admin import db_app, email_app, keys_app, privacy_app, retention_app, users_app
from appliance.cli.client import broadcast_app, contacts_app
from appliance.cli.common import app, err_console
from appliance.errors import ApplianceError

__all__ = ["app", "main"]

# The groups, in the order the help lists them (after the plain verbs).
app.add_typer(modems_app, name="modems")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(contacts_app, name="contacts")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(email_app, name="email")
app.add_typer(db_app, name="db")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ApplianceError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

