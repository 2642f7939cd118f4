"""Administration verbs on this appliance's own settings and database: ``serve``,
``backup``, ``restore``, ``keys``, ``users``, ``email``, ``db``, ``retention``, ``privacy``."""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from appliance import __version__
from appliance.cli.common import CONFIG_OPTION, app, console, err_console, fail
from appliance.errors import ApplianceError

__all__ = ["db_app", "email_app", "keys_app", "privacy_app", "retention_app", "users_app"]


def _audit(engine: Any, action: str, target: str | None, detail: dict[str, Any] | None = None, *,
           now: bool = False) -> None:
    """Record a verb that changes ``engine``'s database in the audit trail as the OS user's:
    in the verb's own next write there (the change), or ``now`` in a transaction of its own
    (after a retention run)."""
    from appliance.audit import Action, Actor, cli_note, record

    if now:
        record(engine, Actor.cli(), Action[action], target, detail)
    else:
        cli_note(engine, Action[action], target, detail)


@app.command()
def serve(
    config: str | None = typer.Option(
        None, "--config", "-c", envvar="APPLIANCE_CONFIG", help="Settings file (TOML)."
    ),
    simulate: int = typer.Option(
        0, "--simulate", min=0, max=64, help="Add N simulated modems (the demo)."
    ),
    host: str | None = typer.Option(None, "--host", help="Listen address (overrides \\[api] host)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (overrides \\[api] port)."),
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
    The copy notes the retention policy in force (shown by --info and by restore)."""
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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Create an API key. The key is printed once, alone on the last line of stdout."""
    if twilio:
        _twilio_create(name, scope or ["send", "read"], config)
        return
    if not scope:
        raise fail("give at least one --scope: send, read or admin (e.g. --scope send --scope read)")
    keys, url = _api_keys(config)
    _audit(keys.engine, "KEY_CREATE", name, {"scopes": sorted(set(scope))})
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
    config: str | None = CONFIG_OPTION,
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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    keys, _ = _api_keys(config)
    _audit(keys.engine, "KEY_REVOKE", key_id)
    key = keys.revoke(key_id)
    print(f"revoked key {key.id} {key.name!r}")


# --------------------------------------------------------------------------- web users

users_app = typer.Typer(help="People who sign in to the web pages: create, list, password, disable.",
                        no_args_is_help=True)


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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Create a user for the web pages (asks for the password, at least 10 characters)."""
    users = _users(config)
    _audit(users.engine, "USER_CREATE", username, {"role": role})
    user = users.create(username, _new_password(password_stdin), role=role)
    print(f"created {user.role} {user.username!r}; sign in at http://<appliance>:<port>/login")


@users_app.command("list")
def users_list(config: str | None = CONFIG_OPTION) -> None:
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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Set a user's password (their browsers are signed out)."""
    users = _users(config)
    _audit(users.engine, "USER_PASSWORD", username)
    user = users.set_password(username, _new_password(password_stdin))
    print(f"password of {user.username!r} changed; their sessions are signed out")


@users_app.command("role")
def users_role(
    username: str = typer.Argument(..., metavar="NAME"),
    role: str = typer.Argument(..., help="staff or admin"),
    config: str | None = CONFIG_OPTION,
) -> None:
    """Make a user staff or admin."""
    users = _users(config)
    _audit(users.engine, "USER_ROLE", username, {"role": role})
    user = users.set_role(username, role)
    print(f"{user.username!r} is now {user.role}")


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(..., metavar="NAME"),
    enable: bool = typer.Option(False, "--enable", help="Allow the user to sign in again."),
    config: str | None = CONFIG_OPTION,
) -> None:
    """Stop a user from signing in (and sign out their browsers); --enable undoes it."""
    users = _users(config)
    _audit(users.engine, "USER_ENABLE" if enable else "USER_DISABLE", username)
    user = users.enable(username) if enable else users.disable(username)
    print(f"{user.username!r} is {'disabled' if user.disabled_at else 'active'}")


email_app = typer.Typer(help="Email to SMS: the SMTP side's settings and certificate.", no_args_is_help=True)


@email_app.command("info")
def email_info(
    config: str | None = CONFIG_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show the \\[email] settings (never the relay's password) and the TLS certificate's
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
    config: str | None = CONFIG_OPTION,
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
    config: str | None = CONFIG_OPTION,
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
    config: str | None = CONFIG_OPTION,
) -> None:
    """Erase bodies older than \\[retention] body_days, prune events and send-log rows older
    than log_days (never those the rate caps count), once, now."""
    from appliance.retention import Retention

    settings, engine = _migrated_engine(config)
    report = Retention(engine, settings.retention).run(dry_run=dry_run)
    if not dry_run:
        _audit(engine, "RETENTION_RUN", None, report.counts(), now=True)
    verb = "would erase/prune" if dry_run else "erased/pruned"
    labels = {"message_bodies": "message bodies", "inbound_bodies": "inbound texts", "events": "events",
              "send_log": "send-log rows", "webhook_payloads": "inbound webhook payloads", "emails": "mails",
              "email_threads": "email threads", "fragments": "waiting multipart parts", "audit": "audit lines"}
    for name, count in report.counts().items():
        print(f"{verb} {count:>8} {labels[name]}")


privacy_app = typer.Typer(help="Per-number privacy requests: export or erase what is stored about a number.",
                          no_args_is_help=True)


def _e164(settings, raw: str) -> str:  # type: ignore[no-untyped-def]
    from appliance.numbers import InvalidNumber, to_e164

    try:
        return to_e164(raw, settings.appliance.default_region)
    except InvalidNumber as exc:
        raise fail(f"NUMBER: {exc}") from None


@privacy_app.command("export")
def privacy_export(
    number: str = typer.Argument(..., help="The number as people type it, e.g. '+1 415 555 0100'."),
    config: str | None = CONFIG_OPTION,
) -> None:
    """Print as JSON every message to the number, every text from it, its contact record
    and its consent history."""
    import json

    from appliance.privacy import export_number

    settings, engine = _migrated_engine(config)
    from appliance.audit import Actor

    print(json.dumps(export_number(engine, _e164(settings, number), actor=Actor.cli()), indent=2, ensure_ascii=False))


@privacy_app.command("erase")
def privacy_erase(
    number: str = typer.Argument(..., help="The number as people type it, e.g. '+1 415 555 0100'."),
    config: str | None = CONFIG_OPTION,
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
    from appliance.audit import Actor

    r = erase_number(engine, e164, by="cli", actor=Actor.cli())
    print(f"{e164}: contact {'deleted' if r.contact_deleted else 'none'}, {r.messages_cancelled} queued "
          f"message(s) cancelled, {r.message_bodies} message bodies and {r.inbound_bodies} inbound texts erased"
          f" ({r.webhook_payloads} webhook payloads, {r.emails} mails, {r.fragments} waiting parts)"
          + ("; still on the opt-out list" if r.still_opted_out else ""))
