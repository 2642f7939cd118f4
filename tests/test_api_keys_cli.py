"""`appliance keys create|list|revoke`, and that a created key works against the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.api.keys import ApiKeys
from appliance.cli import app
from appliance.queue import make_engine

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[appliance]\ndatabase_url = "sqlite:///{tmp_path / "db" / "a.db"}"\n')
    return path


def test_create_prints_the_key_alone_on_the_last_line(config: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "crm", "--scope", "send", "--scope", "read", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    secret = lines[-1]
    assert secret.startswith("sk_") and " " not in secret
    assert "crm" in lines[0] and "read, send" in lines[0]
    key = ApiKeys(make_engine(tmp_path / "db" / "a.db")).verify(secret)
    assert key is not None and key.name == "crm" and key.scopes == {"send", "read"}


def test_create_without_a_scope_or_with_an_unknown_one_fails_readably(config: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "crm", "--config", str(config)])
    assert result.exit_code == 1
    assert "--scope" in result.stderr and "sk_" not in result.stdout
    result = runner.invoke(app, ["keys", "create", "crm", "--scope", "root", "--config", str(config)])
    assert result.exit_code != 0
    assert "unknown scope 'root'" in result.stderr or "unknown scope 'root'" in str(result.exception)


def test_list_and_revoke(config: Path, tmp_path: Path) -> None:
    created = runner.invoke(app, ["keys", "create", "ops", "-s", "admin", "-c", str(config)])
    secret = created.stdout.strip().splitlines()[-1]
    listed = runner.invoke(app, ["keys", "list", "--json", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert entry["name"] == "ops" and entry["scopes"] == ["admin"] and entry["revoked_at"] is None
    assert secret not in listed.stdout
    table = runner.invoke(app, ["keys", "list", "-c", str(config)])
    assert entry["id"] in table.stdout and "ops" in table.stdout

    revoked = runner.invoke(app, ["keys", "revoke", entry["id"], "-c", str(config)])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert ApiKeys(make_engine(tmp_path / "db" / "a.db")).verify(secret) is None
    again = runner.invoke(app, ["keys", "revoke", entry["id"], "-c", str(config)])
    assert again.exit_code != 0
