"""The admin pages over HTTP: modems with the live diag report, API keys."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx


def _table_rows(html: str, table_class: str) -> dict[str, str]:
    """``{label: value}`` of the ``<th scope="row">``/``<td>`` rows of the table with that
    class and an id (the diag report)."""
    found = re.search(rf'<table class="{table_class}" id="[^"]+">(.*?)</table>', html, re.S)
    assert found is not None, "no diag table on the page"
    return dict(re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', found.group(1)))


def test_staff_may_not_open_the_admin_pages(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    for path in ("/modems", "/keys", f"/modems/{live_server.app.modems[0].name}"):
        response = staff.get(path)
        assert response.status_code == 403, path
        assert "for administrators" in response.text
    assert staff.post("/keys", {"name": "x", "scopes": "read"}).status_code == 403
    assert live_server.app.keys.list()[-1].name == "test-admin"


def test_admin_sees_every_modem_and_its_diag_report(live_server: Any, web_client: Any) -> None:
    admin = web_client(live_server, role="admin")
    listing = admin.get("/modems")
    assert listing.status_code == 200
    names = [m.name for m in live_server.app.modems]
    assert len(names) == 2
    for modem in live_server.app.modems:
        assert f'href="/modems/{modem.name}"' in listing.text
        assert modem.identity.imei in listing.text and modem.identity.iccid in listing.text
    assert "this minute" in listing.text and "today" in listing.text

    detail = admin.get(f"/modems/{names[0]}")
    assert detail.status_code == 200
    rows = _table_rows(detail.text, "diag")
    assert rows["SIM"] == "READY"
    assert rows["IMEI"] == live_server.app.modems[0].identity.imei
    assert "dBm" in rows["signal"] and rows["registration"].startswith(("home", "roaming"))
    assert set(rows) >= {"port", "operator", "SMSC", "storage", "ICCID", "CNMI"}


def test_unknown_modem_is_404(live_server: Any, web_client: Any) -> None:
    admin = web_client(live_server, role="admin")
    response = admin.get("/modems/no-such-modem")
    assert response.status_code == 404
    assert "no modem named" in response.text


def test_offline_modem_shows_the_error_not_a_500(live_server: Any, web_client: Any) -> None:
    admin = web_client(live_server, role="admin")
    modem = live_server.app.modems[1]
    live_server.simulators[1].unplug()
    deadline = time.monotonic() + 5
    while modem.online and time.monotonic() < deadline:
        time.sleep(0.02)
    response = admin.get(f"/modems/{modem.name}")
    assert response.status_code == 200
    assert 'id="diag-error"' in response.text and "could not be read" in response.text
    assert 'class="diag" id="diag"' not in response.text
    assert "Last error the appliance saw" in response.text
    # The other modem is untouched, and the list still renders.
    assert admin.get("/modems").status_code == 200


def test_key_created_on_the_web_works_until_revoked(live_server: Any, web_client: Any, caplog: Any) -> None:
    admin = web_client(live_server, role="admin")
    assert admin.get("/keys").status_code == 200
    with caplog.at_level("DEBUG"):
        created = admin.post("/keys", {"name": "school crm", "scopes": ["read", "send"]})
    assert created.status_code == 200
    found = re.search(r'class="secret" id="new-key"><code>(sk_[^<]+)</code>', created.text)
    assert found is not None, created.text
    secret = found.group(1)
    assert "Copy this key now" in created.text
    assert secret not in caplog.text
    assert secret not in admin.get("/keys").text  # shown once only

    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    with api:
        assert api.get("/v1/modems").status_code == 200
        key = next(k for k in live_server.app.keys.list() if k.name == "school crm")
        assert key.scopes == {"read", "send"}
        listing = admin.get("/keys").text
        assert f'action="/keys/{key.id}/revoke" data-confirm=' in listing
        revoked = admin.post(f"/keys/{key.id}/revoke")
        assert revoked.status_code == 303 and revoked.headers["location"] == "/keys"
        assert api.get("/v1/modems").status_code == 401
    assert "revoked" in admin.get("/keys").text
    assert admin.post(f"/keys/{key.id}/revoke").status_code == 404


def test_key_form_errors_next_to_the_fields(live_server: Any, web_client: Any) -> None:
    admin = web_client(live_server, role="admin")
    response = admin.post("/keys", {"name": "no scopes"})
    assert response.status_code == 422
    assert re.search(r'<legend>Scopes</legend>\s*<p class="field-error" id="f-scopes-error">Choose at least one scope',
                     response.text)
    assert 'value="no scopes"' in response.text
    nameless = admin.post("/keys", {"name": " ", "scopes": "admin"})
    assert nameless.status_code == 422 and 'id="f-name-error"' in nameless.text
    assert re.search(r'value="admin" checked', nameless.text)
    assert [k.name for k in live_server.app.keys.list()] == ["test-admin"]


def test_key_forms_without_the_csrf_token_are_refused(live_server: Any, web_client: Any) -> None:
    admin = web_client(live_server, role="admin")
    response = admin.post("/keys", {"name": "sneaky", "scopes": "admin", "csrf_token": "forged"})
    assert response.status_code == 403 and "Form refused" in response.text
    missing = admin.http.post("/keys", data={"name": "sneaky", "scopes": "admin"})
    assert missing.status_code == 403
    key_id = live_server.app.keys.list()[0].id
    assert admin.post(f"/keys/{key_id}/revoke", {"csrf_token": ""}).status_code == 403
    assert [k.name for k in live_server.app.keys.list()] == ["test-admin"]
    assert live_server.app.keys.list()[0].revoked_at is None
