"""Verbs that work through the local REST API (``contacts``, ``broadcast``): :class:`Api`
turns every failure into one readable line."""

from __future__ import annotations

import sys

import typer

from appliance.cli.common import CONFIG_OPTION, console, err_console, fail

__all__ = ["Api", "broadcast_app", "contacts_app"]


contacts_app = typer.Typer(help="Contacts: import and export CSV (through the local REST API).",
                           no_args_is_help=True)
broadcast_app = typer.Typer(help="Broadcasts: preview, send and follow mass texts (through the local REST API).",
                            no_args_is_help=True)

_URL_OPTION = typer.Option(None, "--url", help="The API's base URL (default: from the settings' \\[api]).")
_KEY_OPTION = typer.Option(None, "--key", envvar="APPLIANCE_API_KEY", help="API key (or $APPLIANCE_API_KEY).")
_UPLOAD_LIMIT = 2 * 1024 * 1024


class Api:
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
    config: str | None = CONFIG_OPTION,
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
    api = Api(config, url, key)
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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Export contacts as CSV (number, names, free fields, groups); it imports back as is."""
    from pathlib import Path

    api = Api(config, url, key)
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


def _follow(api: Api, broadcast_id: int) -> dict:  # type: ignore[type-arg]
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
    config: str | None = CONFIG_OPTION,
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
    api = Api(config, url, key)
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
    if not wait or started["status"] == "awaiting_approval":  # an admin approves it (README, "Approval")
        return
    final = _follow(api, bid)
    s = final["stats"]
    console.print(
        f"broadcast {bid} {final['status']}: {s['sent'] + s['delivered']} sent ({s['delivered']} delivered), "
        f"{s['failed']} failed, {s['unknown']} unknown, {s['suppressed']} suppressed, {s['cancelled']} cancelled",
        markup=False, highlight=False, soft_wrap=True,
    )


def _broadcast_action(action: str, broadcast_id: int, url: str | None, key: str | None, config: str | None) -> None:
    api = Api(config, url, key)
    state = api.call("POST", f"/v1/broadcasts/{broadcast_id}/{action}").json()
    s = state["stats"] or {}
    console.print(f"broadcast {broadcast_id} {state['status']}: {s.get('done', 0)}/{s.get('total', 0)} done",
                  markup=False, highlight=False)


@broadcast_app.command("pause")
def broadcast_pause(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                    key: str | None = _KEY_OPTION, config: str | None = CONFIG_OPTION) -> None:
    """Pause a running broadcast (messages being sent finish)."""
    _broadcast_action("pause", broadcast_id, url, key, config)


@broadcast_app.command("resume")
def broadcast_resume(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                     key: str | None = _KEY_OPTION, config: str | None = CONFIG_OPTION) -> None:
    """Resume a paused broadcast."""
    _broadcast_action("resume", broadcast_id, url, key, config)


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast_id: int = typer.Argument(..., metavar="ID"), url: str | None = _URL_OPTION,
                     key: str | None = _KEY_OPTION, config: str | None = CONFIG_OPTION) -> None:
    """Cancel what a broadcast still has queued."""
    _broadcast_action("cancel", broadcast_id, url, key, config)


@broadcast_app.command("status")
def broadcast_status(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show progress until it is done."),
    url: str | None = _URL_OPTION, key: str | None = _KEY_OPTION, config: str | None = CONFIG_OPTION,
) -> None:
    """A broadcast's state and counts."""
    import json

    api = Api(config, url, key)
    state = _follow(api, broadcast_id) if follow else api.call("GET", f"/v1/broadcasts/{broadcast_id}").json()
    print(json.dumps({k: state[k] for k in ("id", "name", "status", "kind", "recipients", "parts", "stats")},
                     indent=2, default=str))
