"""`appliance contacts import|export` and `appliance broadcast send` against a live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from appliance.cli import app

runner = CliRunner()
NO_QUIET = {"broadcasts": {"quiet_hours_start": "", "quiet_hours_end": ""}}


def _api(live: Any) -> list[str]:
    return ["--url", live.url, "--key", live.admin_key]


def test_import_report_then_send_with_progress_until_done(live_server_factory: Any, tmp_path: Path) -> None:
    live = live_server_factory(simulate=2, settings=NO_QUIET)
    csv_file = tmp_path / "parents.csv"
    csv_file.write_text("Phone,Parent,Kid\n+14155556001,Ann,Zoe\n+14155556002,Bob,Max\n+1555,Bad,X\n"
                        "+14155556001,Ann,Zoe\n", encoding="utf-8")
    result = runner.invoke(app, ["contacts", "import", str(csv_file), "--map", "Parent=first_name",
                                 "--map", "Kid=child", "--group", "5B", *_api(live)])
    assert result.exit_code == 0, result.output
    assert "4 row(s); imported: 2 created, 0 merged; skipped: 1 invalid, 1 duplicate" in result.stdout
    assert "invalid" in result.stdout and "same number as row 2" in result.stdout

    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["contacts", "export", str(out), *_api(live)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["number,first_name,last_name,child,groups",
                                            "+14155556001,Ann,,Zoe,5B", "+14155556002,Bob,,Max,5B"]

    result = runner.invoke(app, ["broadcast", "send", "--group", "5B", "--template", "Dear {first_name}, {child} is ill",
                                 "--yes", *_api(live)])
    assert result.exit_code == 0, result.output
    assert "recipients: 2 (0 opted out" in result.stdout and "parts: 2 (2 gsm7" in result.stdout
    assert "Dear Ann, Zoe is ill" in result.stdout  # a sample
    assert "done: 2 sent" in result.stdout
    texts = sorted(rec.text for sim in live.simulators for rec in sim.sent)
    assert texts == ["Dear Ann, Zoe is ill", "Dear Bob, Max is ill"]


def test_declining_cancels_the_draft_and_errors_are_one_line(live_server: Any, tmp_path: Path) -> None:
    result = runner.invoke(app, ["broadcast", "send", "--number", "+14155556003", "--template", "Hi", *_api(live_server)],
                           input="n\n")
    assert result.exit_code == 1 and "not sent" in result.stderr
    listed = live_server.client().get("/v1/broadcasts").json()["items"]
    assert [b["status"] for b in listed] == ["cancelled"]
    assert not [rec for sim in live_server.simulators for rec in sim.sent]

    result = runner.invoke(app, ["broadcast", "send", "--group", "nobody", "--template", "Hi", "--yes",
                                 *_api(live_server)])
    assert result.exit_code == 1 and "group 'nobody' does not exist" in result.stderr
    result = runner.invoke(app, ["contacts", "import", str(tmp_path / "missing.csv"), *_api(live_server)])
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("first_name\nAnn\n")
    result = runner.invoke(app, ["contacts", "import", str(bad), *_api(live_server)])
    assert result.exit_code == 1 and "no column holds the phone number" in result.stderr
    result = runner.invoke(app, ["contacts", "export", "-", "--url", "http://127.0.0.1:9", "--key", "k"])
    assert result.exit_code == 1 and "cannot reach the appliance API" in result.stderr
