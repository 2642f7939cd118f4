"""`appliance keys create|list|revoke`, and that a created key works against the API; on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from appliance.api.keys import ApiKeys
from appliance.cli import app
from appliance.db import keys as keys_db
from appliance.db.engine import read_tx, write_tx
from tests.utils.people import migrated_engine

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[appliance]\ndatabase_url = "{db_url}"\n')
    return path


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url) as engine:
        yield engine


def test_create_prints_the_key_alone_on_the_last_line(config: Path, engine: Engine) -> None:
    result = runner.invoke(app, ["keys", "create", "crm", "--scope", "send", "--scope", "read", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    secret = lines[-1]
    assert secret.startswith("sk_") and " " not in secret
    assert "crm" in lines[0] and "read, send" in lines[0]
    key = ApiKeys(engine).verify(secret)
    assert key is not None and key.name == "crm" and key.scopes == {"send", "read"}


def test_create_without_a_scope_or_with_an_unknown_one_fails_readably(config: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "crm", "--config", str(config)])
    assert result.exit_code == 1
    assert "--scope" in result.stderr and "sk_" not in result.stdout
    result = runner.invoke(app, ["keys", "create", "crm", "--scope", "root", "--config", str(config)])
    assert result.exit_code != 0
    assert "unknown scope 'root'" in result.stderr or "unknown scope 'root'" in str(result.exception)


def test_list_and_revoke(config: Path, engine: Engine) -> None:
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
    assert ApiKeys(engine).verify(secret) is None
    again = runner.invoke(app, ["keys", "revoke", entry["id"], "-c", str(config)])
    assert again.exit_code != 0


def test_verify_records_use_at_most_once_a_minute_and_never_back(engine: Engine) -> None:
    keys = ApiKeys(engine)
    key, secret = keys.create("crm", ["read"])
    assert key.last_used_at is None and keys.verify(secret) is not None
    first = keys.list()[0].last_used_at
    assert first is not None
    assert keys.verify(secret) is not None and keys.list()[0].last_used_at == first  # within the minute
    now = time.time()
    with write_tx(engine) as tx:  # a node that read the key before that use: writes nothing
        assert not keys_db.touch_key(tx, key.id, now - 30, used_before=now - 60)
        assert keys_db.touch_key(tx, key.id, now + 120, used_before=now + 61)
    with read_tx(engine) as tx:
        stored = keys_db.get_key(tx, key.id)
    assert stored is not None and stored.key.last_used_at is not None
    assert stored.key.last_used_at.timestamp() == pytest.approx(now + 120)
    assert keys.revoke(key.id).revoked_at is not None and keys.verify(secret) is None
