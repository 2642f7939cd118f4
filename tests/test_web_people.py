"""The inbox, contacts/groups and opt-out pages over HTTP (httpx, no browser)."""

from __future__ import annotations

import html
import re
import time
from typing import Any

from tests.utils.wait import wait_until


def _field_error(page: str, name: str) -> str:
    """The error shown next to field ``name`` (the ``field`` macro's markup)."""
    found = re.search(rf'<p class="field-error" id="f-{name}-error">([^<]*)</p>', page)
    assert found is not None, f"no error next to {name!r}"
    return html.unescape(found.group(1))


def test_inbox_threads_stop_tag_and_thread_merges_in_and_out(live_server: Any, web_client: Any) -> None:
    from appliance.web.pages.inbox import thread_rows

    staff = web_client(live_server)
    parent, other = "+14155550123", "+14155550177"
    staff.post("/contacts", {"number": parent, "first_name": "Ann", "last_name": "Lee"})
    sent = live_server.app.queue.enqueue([parent], "Trip tomorrow at 9")[0]
    wait_until(lambda: live_server.app.queue.get(sent.id).status in {"sent", "delivered"},
               what="the message to be sent")
    live_server.simulators[0].deliver_sms(other, "Who is this?")
    live_server.simulators[0].deliver_sms(parent, "STOP")
    def both_replies() -> str | None:
        text: str = staff.get("/inbox").text
        # The STOP is stored first, its opt-out recorded just after: wait for both.
        done = "tag-stop" in text and "Who is this?" in text and "opted out" in text
        return text if done else None

    inbox = wait_until(both_replies, what="both replies in the inbox")
    rows = re.findall(r"<tr>.*?</tr>", inbox, re.DOTALL)
    ann = next(r for r in rows if "Ann Lee" in r)
    assert 'class="tag tag-stop">STOP<' in ann and "opted out" in ann and parent in ann
    assert 'href="/inbox/%2B14155550123"' in ann
    stranger = next(r for r in rows if "Who is this?" in r)
    assert "tag-stop" not in stranger and "Ann" not in stranger
    assert inbox.index("Ann Lee") < inbox.index("Who is this?")  # the newest thread first
    assert "Who is this?" not in staff.get("/inbox", params={"q": "STOP"}).text
    first, cursor = thread_rows(live_server.app, limit=1)
    second, end = thread_rows(live_server.app, limit=1, cursor=cursor)
    assert [t.number for t in first + second] == [parent, other] and end is None
    assert first[0].name == "Ann Lee" and first[0].opted_out and first[0].keyword == "stop"

    # The thread: the message we sent, the STOP, then the confirmation the STOP got.
    wait_until(lambda: len(live_server.app.queue.list(to=parent).items) == 2, what="the STOP confirmation")
    thread = staff.get("/inbox/%2B14155550123")
    assert thread.status_code == 200
    items = re.findall(r'<li class="(in|out)">(.*?)</li>', thread.text, re.DOTALL)
    assert [d for d, _ in items] == ["out", "in", "out"]
    assert "Trip tomorrow at 9" in items[0][1] and re.search(r"status-(sent|delivered)", items[0][1])
    assert 'tag tag-stop">STOP<' in items[1][1]
    assert 'href="/compose?to=%2B14155550123"' in thread.text
    assert staff.get("/inbox/not-a-number").status_code == 404


def test_contacts_search_add_and_csv_import_report(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    assert "No replies yet" in staff.get("/inbox").text
    assert staff.get("/inbox", params={"cursor": "junk"}).status_code == 422
    assert "No groups yet" in staff.get("/groups").text
    assert "No number has opted out" in staff.get("/opt-outs").text
    assert "No contacts yet" in staff.get("/contacts").text
    bad = staff.post("/contacts", {"number": "12", "first_name": "X"})
    assert bad.status_code == 422 and _field_error(bad.text, "number")
    assert staff.post("/contacts", {"number": "+14155550101", "first_name": "Zed"}).status_code == 303
    dup = staff.post("/contacts", {"number": "+1 415 555 0101"})
    assert dup.status_code == 422 and "already" in _field_error(dup.text, "number")

    csv = "number,first_name,last_name,class\n+14155550102,Ann,Lee,5B\nnot-a-number,Bob,Ray,5B\n+14155550103,Cy,Oh,6A\n"
    report = staff.post("/contacts/import", {"group": "Parents"},
                        files={"file": ("parents.csv", csv.encode(), "text/csv")})
    assert report.status_code == 200, report.text
    assert re.search(r'id="import-created">2<', report.text)
    assert re.search(r'id="import-invalid" class="bad">1<', report.text)
    skipped = re.search(r'<tr class="issue-invalid">(.*?)</tr>', report.text, re.DOTALL)
    assert skipped is not None and ">3<" in skipped.group(1) and "not-a-number" in skipped.group(1)

    listing = staff.get("/contacts", params={"q": "Ann"}).text
    assert "+14155550102" in listing and "+14155550103" not in listing and "Zed" not in listing
    members = staff.get("/contacts", params={"group": "Parents"}).text
    assert "+14155550102" in members and "+14155550103" in members and "+14155550101" not in members
    assert "3 contacts in the book" in staff.get("/contacts").text

    empty = staff.post("/contacts/import", {}, files={"file": ("empty.csv", b"", "text/csv")})
    assert empty.status_code == 422 and "empty" in _field_error(empty.text, "file")
    no_number = staff.post("/contacts/import", {}, files={"file": ("x.csv", b"name\nAnn\n", "text/csv")})
    assert no_number.status_code == 422 and _field_error(no_number.text, "file")

    export = staff.get("/contacts/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0] == "number,first_name,last_name,class,groups"
    assert "+14155550102,Ann,Lee,5B,Parents" in export.text


def test_groups_create_with_filter_and_numbers_and_bad_filter(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    csv = "number,first_name,class\n+14155550111,Ann,5B\n+14155550112,Bob,5B\n+14155550113,Cy,6A\n"
    assert staff.post("/contacts/import", {}, files={"file": ("c.csv", csv.encode(), "text/csv")}).status_code == 200

    bad = staff.post("/groups", {"name": "Class 5B", "filter": 'class = "5B" or'})
    assert bad.status_code == 422 and _field_error(bad.text, "filter")
    assert 'value="Class 5B"' in bad.text  # what was typed is kept
    bad_numbers = staff.post("/groups", {"name": "Class 5B", "numbers": "+14155550113\nabc"})
    assert bad_numbers.status_code == 422 and "abc" in _field_error(bad_numbers.text, "numbers")
    assert "Class 5B" not in staff.get("/groups").text  # nothing was made

    made = staff.post("/groups", {"name": "Class 5B", "filter": 'class = "5B"',
                                  "numbers": "+14155550113\n+14155550199"})
    assert made.status_code == 303 and made.headers["location"] == "/groups"
    groups = staff.get("/groups").text
    row = re.search(r"<tr>\s*<th scope=\"row\"><a href=\"/contacts\?group=Class%205B\">.*?</tr>", groups, re.DOTALL)
    assert row is not None and re.search(r'class="num">4<', row.group(0))  # 2 by filter + 2 static
    again = staff.post("/groups", {"name": "Class 5B"})
    assert again.status_code == 422 and "exists" in _field_error(again.text, "name")
    members = staff.get("/contacts", params={"group": "Class 5B"}).text
    assert all(n in members for n in ("+14155550111", "+14155550112", "+14155550113", "+14155550199"))


def test_staff_opt_out_suppresses_queued_message(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    queue = live_server.app.queue
    waiting = queue.enqueue(["+14155550150"], "Reminder", send_at=time.time() + 86400)[0]
    assert queue.get(waiting.id).status == "queued"

    bad = staff.post("/opt-outs", {"number": "0000"})
    assert bad.status_code == 422 and "0000" in _field_error(bad.text, "number")
    done = staff.post("/opt-outs", {"number": "(415) 555-0150", "note": "phoned the office"})
    assert done.status_code == 303
    assert queue.get(waiting.id).status == "suppressed"
    assert queue.consent_log("+14155550150")[-1][1:] == ("opt_out", f"web:{staff.username}", "phoned the office")

    listing = staff.get(done.headers["location"]).text
    assert "+14155550150" in listing and f"web:{staff.username}" in listing and "phoned the office" in listing
    assert "/remove" not in listing  # staff get no remove button
    again = staff.post("/opt-outs", {"number": "+14155550150"})
    assert again.status_code == 303 and "was already opted out" in staff.get(again.headers["location"]).text


def test_only_admins_remove_and_forms_need_csrf(live_server: Any, web_client: Any) -> None:
    queue = live_server.app.queue
    staff = web_client(live_server)
    admin = web_client(live_server, role="admin")
    assert staff.post("/opt-outs", {"number": "+14155550160"}).status_code == 303

    refused = staff.post("/opt-outs/%2B14155550160/remove")
    assert refused.status_code == 403 and queue.is_opted_out("+14155550160")
    listing = admin.get("/opt-outs").text
    assert 'action="/opt-outs/%2B14155550160/remove"' in listing
    removed = admin.post("/opt-outs/%2B14155550160/remove")
    assert removed.status_code == 303 and not queue.is_opted_out("+14155550160")
    assert queue.consent_log("+14155550160")[-1][1:3] == ("opt_in", f"web:{admin.username}")

    no_token = staff.http.post("/opt-outs", data={"number": "+14155550161"})
    assert no_token.status_code == 403 and not queue.is_opted_out("+14155550161")
    forged = staff.http.post("/opt-outs", data={"number": "+14155550161", "csrf_token": "x"})
    assert forged.status_code == 403 and not queue.is_opted_out("+14155550161")
    upload = staff.http.post("/contacts/import", files={"file": ("c.csv", b"number\n+14155550162\n", "text/csv")})
    assert upload.status_code == 403
    assert staff.http.post("/groups", data={"name": "X"}).status_code == 403
    assert "+14155550162" not in staff.get("/contacts").text
