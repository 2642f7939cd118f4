"""The inbox, the dashboard and a broadcast's problems in-process, on both engines."""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.db.engine import write_tx
from tests.utils.web_app import PageServices, signed_in_pages

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

HTML = {"Accept": "text/html"}


@pytest.fixture
def pages(db_url: str) -> Iterator[tuple[PageServices, TestClient]]:
    with signed_in_pages(db_url) as made:
        yield made


def receive(services: PageServices, sender: str, body: str, at: float, keyword: str | None = None) -> None:
    services.queue.store_inbound("sim-a", sender, body, digest=f"{sender}:{at}", received_at=at, keyword=keyword)


def thread_rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1] if "<tbody>" in page else page
    return [html.unescape(re.sub(r"<[^>]+>", " ", r)) for r in re.findall(r"<tr>.*?</tr>", body, re.DOTALL)]


def test_inbox_shows_each_senders_newest_body_and_keyword(pages: Any) -> None:
    services, client = pages
    now = time.time()
    # Three senders, their messages interleaved; one of ann's is stored late but older.
    receive(services, "+14155550001", "Hello from Ann", now - 60)
    receive(services, "+14155550002", "STOP", now - 50, keyword="stop")
    receive(services, "+14155550003", "Bo here", now - 40)
    receive(services, "+14155550001", "HELP", now - 30, keyword="help")
    receive(services, "+14155550002", "thanks, all good", now - 20)
    receive(services, "+14155550003", "Bo again", now - 10)
    receive(services, "+14155550001", "an old one read late", now - 90)
    services.queue.opt_out("+14155550002", source="test")
    page = client.get("/inbox")
    assert page.status_code == 200
    rows = thread_rows(page.text)
    assert len(rows) == 3, rows
    bo, two, ann = rows
    assert "+14155550003" in bo and "Bo again" in bo and "Bo here" not in bo
    assert "+14155550002" in two and "thanks, all good" in two and "STOP" not in two
    assert "opted out" in two
    assert "+14155550001" in ann and "HELP" in ann and "Hello from Ann" not in ann
    assert 'class="tag tag-help"' in page.text
    stop = client.get("/inbox", params={"q": "stop"})
    [only] = thread_rows(stop.text)
    assert "+14155550002" in only and "STOP" in only and 'class="tag tag-stop"' in stop.text
    assert thread_rows(client.get("/inbox", params={"q": "%"}).text) == []


def test_inbox_pages_with_its_cursor(pages: Any) -> None:
    from appliance.web.pages.inbox import thread_rows as inbox_threads

    services, _client = pages
    now = time.time()
    for i in range(3):
        receive(services, f"+1415555000{i}", f"reply {i}", now - 10 * i)
    first, cursor = inbox_threads(services, limit=2)
    rest, end = inbox_threads(services, limit=2, cursor=cursor)
    assert [t.number for t in first + rest] == ["+14155550000", "+14155550001", "+14155550002"]
    assert cursor is not None and end is None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "abc", "{}", "[1]", "[1e400, 2]",
    _b64('["t", "x"]'), _b64("{}"), _b64("[1]"), _b64("[1e400, 2]"),
    _b64('["t", {}]'), _b64('["t", [1]]'), _b64('["t", [1e400, 2]]'), _b64('["t", [1, 2]]'),
])
def test_a_forged_inbox_cursor_is_422_naming_cursor(pages: Any, cursor: str) -> None:
    services, client = pages
    receive(services, "+14155550001", "hello", time.time())
    for headers in ({}, HTML):
        page = client.get("/inbox", params={"cursor": cursor}, headers=headers)
        assert page.status_code == 422, page.text
        assert "cursor" in page.text


def test_a_conversation_merges_sent_and_received(pages: Any) -> None:
    services, client = pages
    number = "+14155550001"
    services.queue.enqueue([number], "Trip tomorrow at 9")
    receive(services, number, "STOP", time.time() + 1, keyword="stop")
    page = client.get("/inbox/%2B14155550001")
    assert page.status_code == 200
    items = re.findall(r'<li class="(in|out)">(.*?)</li>', page.text, re.DOTALL)
    assert [d for d, _ in items] == ["out", "in"]
    assert "Trip tomorrow at 9" in items[0][1] and 'tag tag-stop">STOP<' in items[1][1]


def test_dashboard_counts_today(pages: Any) -> None:
    services, client = pages
    waiting = services.queue.enqueue(["+14155550001", "+14155550002", "+14155550003"], "x")
    now = time.time()
    with write_tx(services.queue.engine) as tx:
        tx.exec_driver_sql("UPDATE messages SET status = 'failed', error = 'no', updated_at = ? WHERE id = ?",
                           (now, waiting[0].id))
        tx.exec_driver_sql("UPDATE messages SET status = 'delivered', sent_at = ?, delivered_at = ?, "
                           "updated_at = ? WHERE id = ?", (now, now, now, waiting[1].id))
    receive(services, "+14155550001", "thanks", now)
    live = client.get("/dashboard/live")
    assert live.status_code == 200

    def count(name: str) -> str:
        found = re.search(rf'id="count-{name}"[^>]*>([^<]*)<', live.text)
        assert found is not None, name
        return found.group(1)

    assert [count(n) for n in ("queued", "sent", "delivered", "failed", "received")] == ["1", "1", "1", "1", "1"]
    assert client.get("/").status_code == 200


def test_a_broadcast_page_lists_its_problem_messages(pages: Any) -> None:
    services, client = pages
    created = client.post("/compose/send", data={
        "csrf_token": _csrf(client), "numbers": "+14155550001\n+14155550002", "text": "Trip",
        "kind": "transactional", "when": "now", "name": "Trip",
    }, follow_redirects=False)
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    broadcast_id = int(location.rstrip("/").rsplit("/", 1)[1])
    first = services.queue.list(limit=10).items[-1]
    with write_tx(services.queue.engine) as tx:
        tx.exec_driver_sql("UPDATE messages SET status = 'failed', error = 'SIM refused' WHERE id = ?",
                           (first.id,))
    page = client.get(f"/broadcasts/{broadcast_id}")
    assert page.status_code == 200
    assert "SIM refused" in page.text and f'/inbox/{first.to.replace("+", "%2B")}' in page.text


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/account").text)
    assert found is not None
    return found.group(1)
