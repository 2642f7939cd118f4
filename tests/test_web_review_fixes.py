"""Fixes from the outside review of the staff pages: the sign-in throttle counts an
address's wrong guesses whatever else signs in from it; password hashing runs off the
event loop; a conversation with a sender that is a name (not a number) opens."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi.testclient import TestClient

from appliance.web import Users
from tests.utils.web_app import ORIGIN, signed_in_pages

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def sign_in(client: TestClient, username: str, password: str) -> int:
    form = client.get("/login")
    token = _CSRF.search(form.text)
    assert token is not None
    return client.post("/login", follow_redirects=False, data={
        "username": username, "password": password, "next": "/", "csrf_token": token.group(1),
    }).status_code


def test_one_right_password_does_not_wipe_an_addresss_wrong_guesses(sqlite_url: str) -> None:
    with signed_in_pages(sqlite_url) as (services, _signed):
        users = Users(services.queue.engine)
        for name in ("ana", "ben", "cleo", "dev"):
            users.create(name, "a long enough password", role="staff")
        app = _signed.app
        # Every client below comes from the same address ("testclient").
        with TestClient(app, headers={"Origin": ORIGIN}) as guesser:
            codes = [sign_in(guesser, "ana", f"guess {i}") for i in range(4)]
            assert codes == [401] * 4
        with TestClient(app, headers={"Origin": ORIGIN}) as known:
            assert sign_in(known, "ben", "a long enough password") == 303  # one password it knows
        with TestClient(app, headers={"Origin": ORIGIN}) as guesser:
            codes = [sign_in(guesser, name, "guess") for name in ("cleo", "dev", "cleo")]
    assert codes[0] == 401 and 429 in codes[1:], codes


def test_passwords_are_hashed_off_the_event_loop(sqlite_url: str, monkeypatch: Any) -> None:
    seen: list[bool] = []
    real = Users.authenticate

    def spy(self: Users, username: str, password: str) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(self, username, password)

    monkeypatch.setattr(Users, "authenticate", spy)
    with signed_in_pages(sqlite_url):
        pass
    assert seen == [False]


def test_a_conversation_with_a_named_sender_opens(db_url: str) -> None:
    with signed_in_pages(db_url) as (services, client):
        services.queue.record_inbound("sim1", "MyBank", "Your code is 123456")
        page = client.get("/inbox/MyBank")
        assert page.status_code == 200 and "Your code is 123456" in page.text
        assert 'id="reply"' not in page.text and "cannot be texted back" in page.text
        assert "/inbox/MyBank" in client.get("/inbox").text
        assert client.get("/inbox/NoSuchSender").status_code == 404
