"""Approval of big sends in a real browser (issue 17, item 5): a staff member's broadcast to
300 waits (default ``[broadcasts] approval_over = 200``); they cannot approve it; another
admin approves it on its page and it is sent; the audit page shows both people. Pages are
checked with axe-core like tests/test_web_browser.py (whose browser helpers this reuses)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from test_web_browser import Staff, browser, staff_page  # noqa: F401  (fixtures)

NUMBERS = [f"+1415555{i:04d}" for i in range(6000, 6300)]


def test_a_staff_send_to_300_waits_for_another_admin(staff_page: Any, live_server: Any) -> None:  # noqa: F811
    staff: Staff = staff_page("staff")
    page = staff.page
    page.get_by_role("link", name="Compose", exact=True).click()
    page.get_by_label("Phone numbers").fill("\n".join(NUMBERS))
    page.get_by_label("Message").fill("School closed tomorrow: storm warning")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-sendable").inner_text() == "300"
    page.get_by_role("button", name=re.compile("^Send to 300 people")).click()
    page.wait_for_url(re.compile(r".*/broadcasts/\d+$"))
    url = page.url
    bid = int(url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and send")).to_have_count(0)
    staff.shot("broadcast-awaiting-approval")
    api = live_server.client()
    waiting = api.get(f"/v1/broadcasts/{bid}").json()
    assert waiting["status"] == "awaiting_approval" and waiting["stats"]["total"] == 0
    # The staff member cannot approve it, even by posting the form themselves.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{url}/approve", form={"csrf_token": token or ""})
    assert refused.status == 403
    assert api.get(f"/v1/broadcasts/{bid}").json()["status"] == "awaiting_approval"

    admin: Staff = staff_page("admin")
    admin.page.goto(url)
    expect(admin.page.get_by_text(re.compile(f"{staff.username} asked .* to send this to 300 recipients"))).to_be_visible()
    admin.check_page()
    admin.page.get_by_role("button", name="Approve and send").click()
    expect(admin.page.get_by_text("Approved: sending 300 message(s).")).to_be_visible()
    expect(admin.page.locator("#approval")).to_contain_text(f"approved by {admin.username}")
    approved = api.get(f"/v1/broadcasts/{bid}").json()
    assert approved["status"] in ("running", "done") and approved["stats"]["total"] == 300
    assert (approved["requested_by"], approved["reviewed_by"]) == (f"web:{staff.username}", f"web:{admin.username}")

    admin.page.get_by_role("link", name="Audit", exact=True).click()
    admin.page.get_by_label("Action").select_option("broadcast.")
    admin.page.get_by_role("button", name="Show").click()
    rows = admin.page.get_by_role("row")
    expect(rows.filter(has_text="broadcast.request")).to_contain_text(staff.username)
    expect(rows.filter(has_text="broadcast.approve")).to_contain_text(admin.username)
    admin.shot("audit")
    staff.page.goto("/audit")
    expect(staff.page.get_by_role("heading", level=1)).not_to_have_text("Audit trail")
