"""The web pages over HTTP (no browser): sign-in, roles, CSRF."""

from __future__ import annotations

from typing import Any


def test_dashboard_needs_sign_in_then_shows_modems(live_server: Any, web_client: Any) -> None:
    import httpx

    anonymous = httpx.get(live_server.url + "/", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    staff = web_client(live_server)
    page = staff.get("/")
    assert page.status_code == 200
    assert "sim0" in page.text or "sim-0" in page.text or "Modems" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_browser_gets_html_errors_and_the_api_keeps_problem_json(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    html = {"Accept": "text/html,application/xhtml+xml"}
    missing = staff.get("/no-such-page", headers=html)
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert 'href="/compose"' in missing.text  # still signed in: the navigation is there
    not_an_id = staff.get("/broadcasts/not-a-number", headers=html)  # ids are digits: no such page
    assert not_an_id.status_code == 404 and "Page not found" in not_an_id.text
    bad_id = staff.get("/broadcasts/0", headers=html)
    assert bad_id.status_code == 422 and "<h1>" in bad_id.text
    api = staff.get("/v1/messages/999999", headers={**html, "Authorization": f"Bearer {live_server.admin_key}"})
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
    plain = staff.get("/no-such-page")
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("application/problem+json")
