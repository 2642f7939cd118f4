"""`appliance segments`: what a person sees before sending a text."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from appliance.cli import app

runner = CliRunner()


def test_segments_json_reports_plan() -> None:
    result = runner.invoke(app, ["segments", "--json", "Hi “there” " + "x" * 150])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["encoding"] == "gsm7"
    assert doc["parts"] == 2
    assert doc["replacements"]
    assert "".join(doc["texts"]) == 'Hi "there" ' + "x" * 150


def test_segments_table_shows_emoji_message_as_ucs2() -> None:
    result = runner.invoke(app, ["segments", "😀" * 36])
    assert result.exit_code == 0, result.output
    assert "UCS-2" in result.stdout
    assert "parts:      2" in result.stdout


def test_segments_error_is_one_line_and_nonzero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "segments", "--ref-bits", "9", "hello"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
