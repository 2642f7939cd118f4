"""The house rules the code keeps: errors carry their field as data, the pages reach the
API's dependencies through appliance.api.deps only, the CLI keeps its verbs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from appliance.api.problems import from_queue_error
from appliance.contacts.errors import ContactExists, FilterError
from appliance.errors import InvalidInput
from appliance.numbers import InvalidNumber
from appliance.queue.errors import InvalidRequest
from appliance.web.forms import field_errors

ROOT = Path(__file__).resolve().parents[1]


def test_an_error_names_its_field_as_data_and_in_its_message() -> None:
    exc = InvalidRequest(field="to", detail="give at least one recipient")
    assert (exc.field, exc.detail, str(exc)) == ("to", "give at least one recipient", "to: give at least one recipient")
    bare = InvalidRequest("quiet hours: give both a start and an end")
    assert bare.field is None and str(bare) == bare.detail
    assert isinstance(InvalidNumber("empty phone number"), InvalidInput)


def test_the_api_reads_the_field_it_is_given_not_one_parsed_from_the_message() -> None:
    # A field name with capitals (a free contact field) or a dash: no pattern would find it.
    body = json.loads(from_queue_error(InvalidRequest(field="fields.Class-2", detail="too long")).response().body)
    assert body["status"] == 422
    assert body["errors"] == [{"field": "fields.Class-2", "detail": "too long"}]
    # A message that merely looks like "word: text" is not split when no field was given.
    body = json.loads(from_queue_error(InvalidRequest("status: unknown")).response().body)
    assert body["errors"] == [{"field": "request_body", "detail": "status: unknown"}]


def test_form_errors_go_to_the_field_the_error_names() -> None:
    assert field_errors(ContactExists(field="name", detail="a group called 'x' exists already"), "number") == {
        "name": "A group called 'x' exists already"}
    assert field_errors(FilterError(field="filter", detail="it is empty"), "name") == {"filter": "It is empty"}
    assert field_errors(InvalidNumber("'12' is not a phone number: too short"), "number") == {
        "number": "'12' is not a phone number: too short"}
    assert field_errors(FilterError(field="csv", detail="no number column"), "x", rename={"csv": "file"}) == {
        "file": "No number column"}


def test_pages_do_not_import_api_route_modules() -> None:
    offenders = []
    for path in (ROOT / "appliance" / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("appliance.api.routes"):
                offenders.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert offenders == []


def test_the_cli_lists_every_verb_and_group_in_the_same_order() -> None:
    from appliance.cli import app

    out = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    names = ["version", "simulate", "segments", "diag", "at", "send", "ussd", "serve", "backup", "restore",
             "modems", "keys", "users", "contacts", "broadcast", "email", "db", "retention", "privacy"]
    listed = [m[1] for m in re.finditer(r"^│ (\w+) ", out, flags=re.M)]
    assert listed == names, out


def test_help_texts_keep_the_settings_sections_they_name() -> None:
    """Rich reads ``[api]`` as markup and drops it: help naming a settings section escapes it."""
    from appliance.cli import app

    def help_of(*verb: str) -> str:
        out = CliRunner().invoke(app, [*verb, "--help"], terminal_width=200).output
        return " ".join(out.replace("│", " ").split())

    assert "overrides [api] host" in help_of("serve")
    assert "[retention] body_days" in help_of("retention", "run")
    assert "Show the [email] settings" in help_of("email", "info")
    assert "[discovery] patterns" in help_of("modems", "scan")
    assert "[sms] national_languages" in help_of("segments")
