"""The staff pages in a real browser: Debian's headless Chromium driven by Playwright,
each page checked with axe-core (bundled by axe-playwright-python) for WCAG 2.1 A/AA.

`make test` installs Chromium (scripts/install-test-deps.sh); nothing is downloaded at
test time. Each page is saved as a screenshot under ``screenshots/`` (desktop and 360 px
wide). Set APPLIANCE_SKIP_BROWSER_TESTS=1 to skip these tests on a machine without
Chromium; otherwise a missing browser fails them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from conftest import WEB_PASSWORD

AXE = Axe()
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
# Without the networking flags Chromium keeps trying to reach Google's hosts, which this
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium() -> str:
    path = os.environ.get("APPLIANCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("APPLIANCE_SKIP_BROWSER_TESTS") == "1":
            pytest.skip("no Chromium here and APPLIANCE_SKIP_BROWSER_TESTS=1")
        pytest.fail("Chromium is not installed: run scripts/install-test-deps.sh (make test does)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Staff:
    """A browser page signed in to a live server, with helpers to save screenshots and to
    check the page's basic accessibility."""

    def __init__(self, browser: Any, server: Any, username: str, *, viewport: dict[str, int] = DESKTOP) -> None:
        self.server = server
        self.context = browser.new_context(viewport=viewport, base_url=server.url)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda dialog: dialog.accept())
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # A page may answer 4xx on purpose (a refused form); its styles, scripts and
        # live updates may not.
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                     if r.status >= 400 and r.request.resource_type != "document" else None)
        self.username = username

    def sign_in(self, password: str = WEB_PASSWORD) -> None:
        self.page.goto("/login")
        self.page.get_by_label("User name").fill(self.username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r".*/$"))

    def shot(self, name: str) -> None:
        """Check the page (:meth:`check_page`), save it, then save it 360 px wide, where it
        must not scroll sideways."""
        self.check_page()
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        size = self.page.viewport_size
        self.page.set_viewport_size(PHONE)
        overflow = self.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= PHONE["width"], f"{name}: the page is {overflow} px wide at 360 px"
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        self.page.set_viewport_size(size)

    def check_page(self) -> None:
        """Labels on every visible field, axe-core's WCAG 2.1 A/AA rules, one h1, and no
        failed script, style or live-update request so far."""
        unlabelled = self.page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(el => el.type !== 'hidden' && !el.hidden && el.labels.length === 0
                              && !el.getAttribute('aria-label'))
                .map(el => el.name || el.id)"""
        )
        assert unlabelled == [], f"fields without a label on {self.page.url}: {unlabelled}"
        # axe-core's WCAG 2.1 A and AA rules (labels, names, contrast, landmarks, ARIA use).
        found = AXE.run(self.page, options={"runOnly": {"type": "tag", "values": WCAG},
                                            "resultTypes": ["violations"]}).response["violations"]
        problems = [f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:3]}"
                    for v in found]
        assert problems == [], f"accessibility problems on {self.page.url}: {problems}"
        assert self.page.locator("h1").count() == 1
        assert not self.errors, self.errors

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def staff_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """``staff_page(role="staff")``: a browser signed in as a new user of that role."""
    from appliance.web import Users

    opened: list[Staff] = []

    def make(role: str = "staff", *, viewport: dict[str, int] = DESKTOP) -> Staff:
        name = f"{role}-{len(opened) + 1}"
        Users(live_server.app.queue.engine).create(name, WEB_PASSWORD, role=role)
        staff = Staff(browser, live_server, name, viewport=viewport)
        staff.sign_in()
        opened.append(staff)
        return staff

    yield make
    for staff in opened:
        staff.close()


def test_sign_in_keyboard_and_dashboard(browser: Any, live_server: Any) -> None:
    from appliance.web import Users

    Users(live_server.app.queue.engine).create("maria", WEB_PASSWORD, role="staff")
    staff = Staff(browser, live_server, "maria")
    page = staff.page
    page.goto("/")
    assert page.url.endswith("/login")
    staff.shot("login")
    # Keyboard only: the skip link first, then the fields, Enter submits.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("User name").fill("maria")
    page.get_by_label("Password").fill("wrong password!")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    assert "do not match" in alert.inner_text()
    staff.shot("login-error")
    page.get_by_label("Password").fill(WEB_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    modems = page.get_by_role("table")
    for sim in live_server.app.modems:
        assert sim.name in modems.inner_text()
    assert "online" in modems.inner_text()
    staff.shot("dashboard")
    # The dashboard follows the modems by itself: unplug one, the page shows it offline.
    unplugged = live_server.simulators[1]
    row = page.get_by_role("row", name=re.compile(live_server.app.modems[1].name))
    unplugged.unplug()
    expect(row).to_contain_text("offline", timeout=15_000)
    unplugged.replug()
    # The session cookie is not readable by scripts.
    assert page.evaluate("document.cookie") == ""
    staff.close()


def test_compose_counts_live_then_sends_and_progress_reaches_done(staff_page: Any) -> None:
    staff = staff_page()
    page = staff.page
    page.get_by_role("link", name="Compose", exact=True).click()
    page.get_by_label("Phone numbers").fill("+14155550121\n+14155550122\n+14155550123")
    message = page.get_by_label("Message")
    counter = page.locator("#counter")
    message.fill("a" * 160)
    expect(counter).to_have_attribute("data-parts", "1")
    message.press("End")
    message.type("b")
    expect(counter).to_have_attribute("data-parts", "2")
    assert "GSM-7" in counter.inner_text()
    message.fill("Bus leaves at 8 🚌")
    expect(counter).to_have_attribute("data-encoding", "ucs2")
    assert "UCS-2" in counter.inner_text()
    staff.shot("compose")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-sendable").inner_text() == "3"
    staff.shot("compose-preview")
    page.get_by_role("button", name=re.compile("^Send to 3 people")).click()
    page.wait_for_url(re.compile(r".*/broadcasts/\d+$"))
    # The page updates itself: no reload until the status says done.
    expect(page.locator("#status")).to_have_text("done", timeout=20_000)
    assert page.locator("#done").inner_text() == "3"
    assert page.locator("#bar").get_attribute("value") == "3"
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    staff.shot("broadcast-done")
    sent = [r for s in staff.server.simulators for r in s.sent]
    assert len(sent) == 3
    page.get_by_role("link", name="Broadcasts", exact=True).click()
    staff.shot("broadcasts")


def test_compose_reads_numbers_typed_as_people_write_them(staff_page: Any) -> None:
    staff = staff_page()
    page = staff.page
    page.get_by_role("link", name="Compose", exact=True).click()
    numbers = page.get_by_label("Phone numbers")
    numbers.click()
    for i, written in enumerate(["+1 415 641 0011", "(415) 641-0012", "082 555 1234"]):
        if i:
            numbers.press("Enter")
        numbers.press_sequentially(written)
    page.get_by_label("Message").fill("The trip is on Friday.")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-sendable").inner_text() == "2"
    unreadable = page.locator("#pv-unreadable")
    expect(unreadable).to_contain_text("082 555 1234")
    assert "415" not in unreadable.inner_text()
    staff.shot("compose-numbers-preview")
    page.get_by_role("button", name="Change the message").click()
    # A column pasted from a spreadsheet: the numbers come tab-separated.
    page.get_by_label("Phone numbers").fill("+1 415 641 0011\t(415) 641-0012")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-sendable").inner_text() == "2"
    page.get_by_role("button", name=re.compile("^Send to 2 people")).click()
    expect(page.locator("#status")).to_have_text("done", timeout=20_000)
    assert sorted(r.to for s in staff.server.simulators for r in s.sent) == ["+14156410011", "+14156410012"]


def test_api_docs_render_offline_under_their_policy(browser: Any, live_server: Any) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: problems.append(f"left the appliance: {r.url}")
            if not r.url.startswith(live_server.url) and not r.url.startswith("data:") else None)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SMS appliance")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    assert problems == []
    context.close()


def test_form_without_its_token_is_refused(staff_page: Any) -> None:
    staff = staff_page()
    page = staff.page
    page.goto("/compose")
    # Errors show next to their fields, and focus can reach them.
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#f-numbers-error")).to_contain_text("at least one number")
    expect(page.get_by_label("Message")).to_have_attribute("aria-invalid", "true")
    staff.shot("compose-errors")
    page.get_by_label("Phone numbers").fill("+14155550131")
    page.get_by_label("Message").fill("forged?")
    page.evaluate("document.querySelector('main input[name=csrf_token]').remove()")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    assert "Nothing was changed" in page.get_by_role("alert").inner_text()
    staff.shot("csrf-refused")
    # And a forged token from a script on the page fares no better.
    status = page.evaluate(
        """async () => (await fetch('/compose/send', {method: 'POST', body: new URLSearchParams(
               {csrf_token: 'guess', numbers: '+14155550131', text: 'x', kind: 'transactional', when: 'now'})})).status"""
    )
    assert status == 403
    assert all(len(s.sent) == 0 for s in staff.server.simulators)


def test_signed_out_after_sign_out(staff_page: Any) -> None:
    staff = staff_page()
    page = staff.page
    page.goto("/account")
    staff.shot("account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    page.goto("/compose")
    assert re.search(r"/login\?next=%2Fcompose$", page.url)
    expect(page.get_by_label("User name")).to_be_visible()


def _reload_until(page: Any, text: str, timeout_s: float = 10.0) -> None:
    """Reload ``page`` until ``text`` shows (an inbound SMS takes a moment to be stored)."""
    import time

    deadline = time.monotonic() + timeout_s
    while page.get_by_text(text).count() == 0:
        assert time.monotonic() < deadline, f"{text!r} never showed on {page.url}"
        time.sleep(0.2)
        page.reload()


def test_import_csv_group_send_to_it_then_read_the_replies(staff_page: Any, tmp_path: Path) -> None:
    staff = staff_page()
    page = staff.page
    csv = tmp_path / "class-5b.csv"
    csv.write_text(
        "Phone,First name,Last name,class\n"
        "+14155550151,Ana,Silva,5B\n"
        "(415) 555-0152,Ben,Okoro,5B\n"
        "not a number,Cy,Lee,5B\n"
        "+14155550154,Dee,Park,6A\n",
        encoding="utf-8",
    )
    page.get_by_role("link", name="Contacts", exact=True).click()
    # Over the upload limit: refused next to the field before anything is sent.
    big = tmp_path / "everyone.csv"
    big.write_bytes(b"number,first_name\n" + b"+14155550199,Someone with a long name\n" * 60_000)
    page.get_by_label("CSV file", exact=True).set_input_files(str(big))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#f-file-size-error")).to_contain_text("the limit is")
    expect(page.get_by_label("CSV file", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/contacts")
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Import report")).to_be_visible()
    report = page.locator("main").inner_text()
    assert "not a number" in report
    staff.shot("contacts-import")
    page.goto("/groups")
    page.get_by_label("Name", exact=True).fill("Class 5B")
    page.get_by_label("Filter (optional)").fill('class = "5B"')
    page.get_by_role("button", name="Make group").click()
    expect(page.get_by_role("link", name="Class 5B")).to_be_visible()
    staff.shot("groups")
    page.goto("/contacts")
    expect(page.get_by_text("Ana")).to_be_visible()
    staff.shot("contacts")

    page.get_by_role("link", name="Compose", exact=True).click()
    page.get_by_label(re.compile("^Class 5B")).check()
    page.get_by_label("Message").fill("Hello {first_name}, the trip is on Friday.")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-sendable").inner_text() == "2"
    expect(page.get_by_text("Hello Ana, the trip is on Friday.")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Send to 2 people")).click()
    expect(page.locator("#status")).to_have_text("done", timeout=20_000)
    bodies = sorted(r.text for s in staff.server.simulators for r in s.sent)
    assert bodies == ["Hello Ana, the trip is on Friday.", "Hello Ben, the trip is on Friday."]

    staff.server.simulators[0].deliver_sms("+14155550151", "Thank you! Does she need lunch?")
    staff.server.simulators[1].deliver_sms("+14155550152", "STOP")
    page.get_by_role("link", name="Inbox", exact=True).click()
    _reload_until(page, "Does she need lunch?")
    _reload_until(page, "STOP")
    expect(page.locator("td .tag-stop")).to_have_text("STOP")
    expect(page.locator(".opted-out")).to_have_count(1)
    staff.shot("inbox")
    page.get_by_role("link", name=re.compile("Ana")).first.click()
    thread = page.locator(".thread")
    expect(thread.locator(".out")).to_contain_text("Hello Ana, the trip is on Friday.")
    expect(thread.locator(".in")).to_contain_text("Does she need lunch?")
    staff.shot("thread")


def test_opt_out_suppresses_the_next_send_and_admin_pages(staff_page: Any) -> None:
    admin = staff_page("admin")
    page = admin.page
    page.get_by_role("link", name="Opt-outs", exact=True).click()
    page.locator("#f-number").fill("(415) 555-0161")
    page.get_by_label("Note (optional)").fill("phoned the office")
    page.get_by_role("button", name="Opt out", exact=True).click()
    expect(page.locator("main")).to_contain_text("+14155550161")
    admin.shot("opt-outs")

    page.goto("/compose")
    page.get_by_label("Phone numbers").fill("+14155550161, +14155550162")
    page.get_by_label("Message").fill("Clinic closed on Monday.")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#pv-opted").inner_text() == "1"
    assert page.locator("#pv-sendable").inner_text() == "1"
    page.get_by_role("button", name=re.compile("^Send to 1 person")).click()
    expect(page.locator("#status")).to_have_text("done", timeout=20_000)
    expect(page.locator("#n-suppressed")).to_have_text("1")
    assert [r.to for s in admin.server.simulators for r in s.sent] == ["+14155550162"]

    page.get_by_role("link", name="Modems", exact=True).click()
    admin.shot("modems")
    name = admin.server.app.modems[0].name
    page.goto(f"/modems/{name}")
    expect(page.locator("#diag")).to_contain_text("IMEI")
    admin.shot("modem-diag")
    page.get_by_role("link", name="API keys", exact=True).click()
    page.get_by_label("Name", exact=True).fill("school-crm")
    page.get_by_label(re.compile("^send")).check()
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page.locator(".secret")).to_contain_text("sk_")
    admin.shot("keys")


def test_the_accessibility_check_catches_problems(staff_page: Any) -> None:
    """The checker that passes every page above does find faults when there are some."""
    staff = staff_page()
    page = staff.page
    page.evaluate("""() => {
        const main = document.querySelector('main');
        main.append(document.createElement('input'));
        const faint = document.createElement('p');
        faint.textContent = 'faint text';
        faint.style.color = '#eeeeee';
        main.append(faint);
    }""")
    found = {v["id"] for v in AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]}
    assert {"label", "color-contrast"} <= found, found
    with pytest.raises(AssertionError, match="label"):
        staff.check_page()


def test_staff_see_no_admin_pages(staff_page: Any) -> None:
    staff = staff_page()
    page = staff.page
    expect(page.get_by_role("link", name="Modems")).to_have_count(0)
    response = page.goto("/modems")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    staff.shot("not-allowed")


def test_charts_pass_axe_and_stay_readable_at_360_px(staff_page: Any) -> None:
    import time as _time

    from appliance.db import signals as signals_db
    from appliance.db.engine import write_tx
    from appliance.db.signals import SignalSampleIn

    staff = staff_page()
    app = staff.server.app
    now = _time.time()
    made = app.queue.enqueue([f"+1415555{i:04d}" for i in range(4)], "chart")
    with write_tx(app.queue.engine) as tx:
        for i, m in enumerate(made):
            at = now - i * 86400
            tx.exec_driver_sql("UPDATE messages SET status = ?, sent_at = ?, delivered_at = ?, updated_at = ? "
                               "WHERE id = ?", ("failed" if i == 3 else "delivered", at, at, at, m.id))
        signals_db.record_samples(tx, [SignalSampleIn(app.modems[0].name, now - k * 300, 15, -83 + k % 7, 3)
                                       for k in range(288)])
    page = staff.page
    page.goto("/")
    expect(page.locator("#chart-sent svg[role=img]")).to_be_visible()
    staff.shot("dashboard-charts")
    page.set_viewport_size(PHONE)
    # Chart text on a phone: at least 10 px tall (the viewBox is drawn for 360 px).
    smallest = page.evaluate("Math.min(...[...document.querySelectorAll('.chart-svg text')]"
                             ".map(t => t.getBoundingClientRect().height).filter(h => h > 0))")
    assert smallest >= 10, smallest
    assert page.evaluate("document.querySelector('#chart-sent svg').getBoundingClientRect().width") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)
    page.locator("#chart-sent summary").click()  # the numbers, for whoever cannot see the bars
    expect(page.locator("#chart-sent table")).to_be_visible()
    staff.check_page()
    # A finished broadcast: its outcome shares and sends per hour.
    page.get_by_role("link", name="Compose", exact=True).click()
    page.get_by_label("Phone numbers").fill("+14155550131\n+14155550132")
    page.get_by_label("Message").fill("Charts")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name=re.compile("^Send to 2 people")).click()
    page.wait_for_url(re.compile(r".*/broadcasts/\d+$"))
    expect(page.locator("#status")).to_have_text("done", timeout=20_000)
    page.reload()
    expect(page.locator("#chart-share svg[role=img]")).to_be_visible()
    expect(page.locator("#chart-per-hour svg[role=img]")).to_be_visible()
    staff.shot("broadcast-charts")
