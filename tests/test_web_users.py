"""Web users, sessions and the sign-in flow: the units on both engines (SQLite and
PostgreSQL), the CLI, and the sign-in pages over HTTP."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from conftest import csrf_of
from typer.testing import CliRunner

from appliance.cli import app as cli_app
from appliance.db import users as users_db
from appliance.db.engine import read_tx, write_tx
from appliance.web.auth import SESSION_COOKIE, LoginThrottle
from appliance.web.users import Sessions, User, UserError, Users, hash_password, verify_password
from tests.utils.people import migrated_engine, race

PASSWORD = "correct horse battery"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url) as engine:
        yield engine


# --------------------------------------------------------------------------- passwords and users


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    scheme, n, r, p, _salt, _digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "plain$text")
    assert PASSWORD not in first


def test_create_refuses_short_passwords_duplicates_and_unknown_roles(engine: Engine) -> None:
    users = Users(engine)
    with pytest.raises(UserError, match="at least 10 characters"):
        users.create("alice", "short")
    alice = users.create("alice", PASSWORD)
    assert alice.role == "staff" and not alice.is_admin and alice.disabled_at is None
    with pytest.raises(UserError, match="already exists"):
        users.create("alice", PASSWORD, role="admin")
    with pytest.raises(UserError, match="unknown role"):
        users.create("bob", PASSWORD, role="root")
    with pytest.raises(UserError, match="without spaces"):
        users.create("bob smith", PASSWORD)
    assert [u.username for u in users.list()] == ["alice"]


def test_authenticate_checks_the_password_and_refuses_disabled_users(engine: Engine) -> None:
    users = Users(engine)
    users.create("alice", PASSWORD, role="admin")
    user = users.authenticate("alice", PASSWORD)
    assert user is not None and user.is_admin
    assert users.get("alice").last_login_at is not None
    assert users.authenticate("alice", "wrong password") is None
    assert users.authenticate("nobody", PASSWORD) is None
    users.disable("alice")
    assert users.authenticate("alice", PASSWORD) is None
    users.enable("alice")
    assert users.authenticate("alice", PASSWORD) is not None


def test_set_password_ends_the_users_sessions(engine: Engine) -> None:
    users, sessions = Users(engine), Sessions(engine)
    alice = users.create("alice", PASSWORD)
    token, session = sessions.create(alice)
    looked_up = sessions.lookup(token)
    assert looked_up is not None and looked_up.user.username == "alice" and looked_up.csrf == session.csrf
    users.set_password("alice", "another long password")
    assert sessions.lookup(token) is None
    assert users.authenticate("alice", PASSWORD) is None
    assert users.authenticate("alice", "another long password") is not None


def test_sessions_expire_when_idle_and_end_when_the_user_is_disabled(engine: Engine) -> None:
    users = Users(engine)
    alice = users.create("alice", PASSWORD)
    bob = users.create("bob", PASSWORD)
    quick = Sessions(engine, idle_s=0.05)
    token, _ = quick.create(alice)
    assert quick.lookup(token) is not None
    time.sleep(0.1)
    assert quick.lookup(token) is None

    sessions = Sessions(engine)
    token, _ = sessions.create(bob)
    other, _ = sessions.create(alice)
    users.disable("bob")
    assert sessions.lookup(token) is None
    assert sessions.lookup(other) is not None
    assert sessions.lookup("") is None and sessions.lookup("made-up") is None
    sessions.end(other)
    assert sessions.lookup(other) is None


def test_a_session_is_touched_at_most_once_a_minute_and_never_back(engine: Engine) -> None:
    users, sessions = Users(engine), Sessions(engine, idle_s=3600, max_age_s=7200)
    token, _ = sessions.create(users.create("alice", PASSWORD))
    digest = hashlib.sha256(token.encode()).hexdigest()
    now = time.time()
    with write_tx(engine) as tx:
        # Seen just now: a touch meant for a session idle over a minute does nothing.
        assert not users_db.touch_session(tx, digest, now, now + 3600, seen_before=now - 60)
        old = now - 120  # pretend the last request was two minutes ago
        assert users_db.touch_session(tx, digest, old, old + 3600, seen_before=float("inf"))
    looked = sessions.lookup(token)
    with read_tx(engine) as tx:
        record = users_db.get_session(tx, digest)
    assert looked is not None and record is not None
    assert record.last_seen_at >= now and record.expires_at == pytest.approx(looked.expires_at)
    assert record.user.username == "alice" and record.csrf == looked.csrf
    with write_tx(engine) as tx:  # a request that read the old time too (another node) writes nothing
        assert not users_db.touch_session(tx, digest, old + 1, old + 3601, seen_before=now - 60)
    with read_tx(engine) as tx:
        assert users_db.get_session(tx, digest) == record


def test_the_same_user_name_created_twice_at_once_makes_one_user(db_url: str) -> None:
    with migrated_engine(db_url) as one, migrated_engine(db_url) as two:
        for round_ in range(3):
            name = f"twin{round_}"
            got = race(lambda: Users(one).create(name, PASSWORD), lambda: Users(two).create(name, PASSWORD))
            assert sorted(type(g).__name__ for g in got) == ["User", "UserError"], got
            assert "already exists" in str(next(g for g in got if isinstance(g, UserError)))
            assert next(g for g in got if isinstance(g, User)) == Users(one).get(name)
        assert [u.username for u in Users(two).list()] == ["twin0", "twin1", "twin2"]


def test_login_throttle_waits_after_five_failures() -> None:
    throttle = LoginThrottle(limit=5, window_s=300)
    for _ in range(4):
        throttle.failed("user:alice", "addr:1.2.3.4")
    assert throttle.wait_s("user:alice", "addr:1.2.3.4") == 0
    throttle.failed("user:alice", "addr:1.2.3.4")
    assert 0 < throttle.wait_s("user:alice") <= 300
    assert throttle.wait_s("addr:1.2.3.4") > 0
    assert throttle.wait_s("user:bob") == 0
    throttle.succeeded("user:alice", "addr:1.2.3.4")
    assert throttle.wait_s("user:alice", "addr:1.2.3.4") == 0


# --------------------------------------------------------------------------- the CLI


def test_users_cli_create_list_disable(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    monkeypatch.setenv("APPLIANCE_APPLIANCE__DATABASE_URL", db_url)
    runner = CliRunner()
    created = runner.invoke(cli_app, ["users", "create", "alice", "--role", "admin", "--password-stdin"],
                            input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    assert "created admin 'alice'" in created.stdout and PASSWORD not in created.output
    listed = runner.invoke(cli_app, ["users", "list"])
    assert listed.exit_code == 0 and "alice" in listed.stdout and "admin" in listed.stdout
    assert "active" in listed.stdout

    with migrated_engine(db_url) as engine:
        users = Users(engine)
        assert users.authenticate("alice", PASSWORD) is not None
        disabled = runner.invoke(cli_app, ["users", "disable", "alice"])
        assert disabled.exit_code == 0 and "disabled" in disabled.stdout
        assert users.authenticate("alice", PASSWORD) is None
        assert "disabled" in runner.invoke(cli_app, ["users", "list"]).stdout


def test_users_cli_short_password_fails_with_one_readable_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    env["APPLIANCE_APPLIANCE__DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "users", "create", "bob", "--password-stdin"],
        input="short\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: the password must be at least 10 characters long"], result.stderr
    assert "Traceback" not in result.stderr and "created" not in result.stdout


# --------------------------------------------------------------------------- sign-in over HTTP


def _browser(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, follow_redirects=False,
                        headers={"Origin": server.url})


def _sign_in(client: httpx.Client, username: str, password: str, next_path: str = "/") -> httpx.Response:
    form = client.get("/login", params={"next": next_path})
    return client.post("/login", data={"username": username, "password": password, "next": next_path,
                                       "csrf_token": csrf_of(form.text)})


def test_wrong_password_is_401_then_throttled_with_429(live_server: Any) -> None:
    Users(live_server.app.queue.engine).create("alice", PASSWORD)
    with _browser(live_server) as client:
        first = _sign_in(client, "alice", "not the password")
        assert first.status_code == 401
        assert "do not match an active account" in first.text
        assert '<form method="post" action="/login"' in first.text and 'value="alice"' in first.text
        assert SESSION_COOKIE not in client.cookies
        for _ in range(4):
            assert _sign_in(client, "alice", "not the password").status_code == 401
        sixth = _sign_in(client, "alice", PASSWORD)  # even the right password waits now
        assert sixth.status_code == 429
        assert "Too many failed sign-ins" in sixth.text
        assert SESSION_COOKIE not in client.cookies


def test_login_without_its_form_token_is_refused(live_server: Any) -> None:
    Users(live_server.app.queue.engine).create("alice", PASSWORD)
    with _browser(live_server) as client:
        bare = client.post("/login", data={"username": "alice", "password": PASSWORD, "next": "/"})
        assert bare.status_code == 403 and "had expired" in bare.text
        client.get("/login")  # the login cookie is set, but the form's token is missing
        assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 403
        assert SESSION_COOKIE not in client.cookies


def test_sign_in_sets_a_strict_cookie_and_never_redirects_off_site(live_server: Any) -> None:
    Users(live_server.app.queue.engine).create("alice", PASSWORD)
    with _browser(live_server) as client:
        form = client.get("/login", params={"next": "//evil.example"})
        assert "evil.example" not in form.text
        response = _sign_in(client, "alice", PASSWORD, next_path="//evil.example")
        assert response.status_code == 303 and response.headers["location"] == "/"
        [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    with _browser(live_server) as client:
        response = _sign_in(client, "alice", PASSWORD, next_path="https://evil.example/x")
        assert response.headers["location"] == "/"
    with _browser(live_server) as client:
        response = _sign_in(client, "alice", PASSWORD, next_path="/account")
        assert response.headers["location"] == "/account"


def test_sign_out_ends_the_session(live_server: Any) -> None:
    Users(live_server.app.queue.engine).create("alice", PASSWORD)
    with _browser(live_server) as client:
        assert _sign_in(client, "alice", PASSWORD).status_code == 303
        old = client.cookies[SESSION_COOKIE]
        page = client.get("/")
        assert page.status_code == 200
        out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    with _browser(live_server) as replay:
        replay.cookies.set(SESSION_COOKIE, old)
        after = replay.get("/")
        assert after.status_code == 303 and after.headers["location"] == "/login"
