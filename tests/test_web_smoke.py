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
