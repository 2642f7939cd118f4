"""Compose, preview, send and follow a broadcast through the web pages (httpx, no browser)."""

from __future__ import annotations

import re
from typing import Any

from tests.utils.wait import wait_until


def test_count_follows_the_planner(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)

    def count(text: str, kind: str = "transactional") -> dict[str, Any]:
        response = staff.http.post("/compose/count", data={"text": text, "kind": kind},
                                   headers={"X-CSRF-Token": staff.csrf})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    plain = count("a" * 161)
    assert (plain["parts"], plain["encoding"]) == (2, "gsm7")
    emoji = count("Hi 👋")
    assert emoji["encoding"] == "ucs2" and emoji["parts"] == 1 and "UCS-2" in emoji["summary"]
    footer = count("a" * 150, "marketing")
    assert footer["parts"] == 2 and "footer" in footer["summary"]
    long = count("я" * 5000)
    assert long["parts"] > 10 and "Too long" in long["summary"]
    assert staff.http.post("/compose/count", data={"text": "x"}).status_code == 403


def test_compose_preview_send_and_progress(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    form = {"numbers": "+14155550101\n+14155550102, not-a-number", "text": "Hello {first_name|there}",
            "kind": "transactional", "when": "now", "name": "Trip"}
    preview = staff.post("/compose/preview", form)
    assert preview.status_code == 200, preview.text
    assert 'id="pv-sendable">2<' in preview.text and 'id="pv-invalid" class="bad">1<' in preview.text
    assert "Hello there" in preview.text
    form_id = re.search(r'name="form_id" value="([^"]+)"', preview.text).group(1)  # type: ignore[union-attr]
    sent = staff.post("/compose/send", {**form, "form_id": form_id})
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert re.fullmatch(r"/broadcasts/\d+", location)
    # A second click on the same confirmation does not send again.
    again = staff.post("/compose/send", {**form, "form_id": form_id})
    assert again.status_code == 303 and again.headers["location"] == location
    progress = wait_until(lambda: (p := staff.get(location + "/progress").json())["status"] == "done" and p,
                          what="the broadcast to be done")
    assert progress["status"] == "done" and progress["total"] == 2
    assert progress["sent"] + progress["delivered"] == 2
    page = staff.get(location)
    assert page.status_code == 200 and "Trip" in page.text
    unnamed = staff.post("/compose/send", {**form, "name": "", "numbers": "+14155550103"})
    assert "To +14155550103" in staff.get(unnamed.headers["location"]).text
    assert len(staff.get("/broadcasts").text.split('href="/broadcasts/')) == 3  # two sends, one row each


def test_compose_errors_are_next_to_their_fields(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    empty = staff.post("/compose/preview", {"numbers": "", "text": " ", "kind": "transactional", "when": "now"})
    assert empty.status_code == 422
    assert 'id="f-numbers-error"' in empty.text and 'id="f-text-error"' in empty.text
    assert 'aria-invalid="true"' in empty.text
    past = staff.post("/compose/preview", {"numbers": "+14155550101", "text": "x", "kind": "transactional",
                                           "when": "later", "send_at": "2001-01-01T10:00"})
    assert past.status_code == 422 and "This time has passed" in past.text
    missing = staff.post("/compose/preview", {"numbers": "+14155550101", "text": "Hi {first_name}",
                                              "kind": "transactional", "when": "now"})
    assert missing.status_code == 200 and 'id="pv-missing"' in missing.text
    refused = staff.post("/compose/send", {"numbers": "+14155550101", "text": "Hi {first_name}",
                                           "kind": "transactional", "when": "now"})
    assert refused.status_code == 422 and "Fields are missing" in refused.text


def test_pause_resume_cancel_from_the_page(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    form = {"numbers": "+14155550111", "text": "Later", "kind": "transactional", "when": "later",
            "send_at": "2099-01-01T10:00"}
    sent = staff.post("/compose/send", form)
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert staff.get(location + "/progress").json()["status"] == "scheduled"
    assert staff.post(location + "/pause").status_code == 303
    assert staff.get(location + "/progress").json()["status"] == "paused"
    assert staff.post(location + "/resume").status_code == 303
    assert staff.post(location + "/cancel").status_code == 303
    progress = staff.get(location + "/progress").json()
    assert progress["status"] == "cancelled" and progress["cancelled"] == 1
    # Acting on a finished broadcast says why, without an error page.
    refused = staff.post(location + "/pause", follow_redirects=True)
    assert refused.status_code == 200 and "Not done" in refused.text
    assert staff.post(location + "/pause", {"csrf_token": "forged"}).status_code == 403
