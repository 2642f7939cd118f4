"""The REST API in-process (FastAPI's TestClient) over a real queue, real keys, no modems."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import ApiKeys, create_app
from appliance.config import load_settings
from appliance.queue import Dispatcher, Queue
from appliance.db.engine import POSTGRESQL, dialect, make_engine, write_tx
from tests.utils.services import ApiServices as Services

PROBLEM = "application/problem+json"

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@dataclass
class Api:
    services: Services
    client: TestClient
    keys: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def post(self, path: str, who: str = "all", **kw: Any) -> Any:
        return self.client.post(path, headers={**self.as_(who), **kw.pop("headers", {})}, **kw)

    def get(self, path: str, who: str = "all", **kw: Any) -> Any:
        return self.client.get(path, headers=self.as_(who), **kw)

    def delete(self, path: str, who: str = "all", **kw: Any) -> Any:
        return self.client.delete(path, headers=self.as_(who), **kw)


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    """The API over a queue on each engine (``db_url``: SQLite and PostgreSQL)."""
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'[appliance]\ndatabase_url = "{db_url}"\ndefault_region = "US"\nmax_parts = 3\n'
    )
    settings = load_settings(config)
    queue = Queue(settings.appliance.database_url, max_parts=settings.appliance.max_parts)
    keys = ApiKeys(queue.engine)
    services = Services(settings, queue, keys, Dispatcher(queue, []))
    made = {
        "all": keys.create("ops", ["admin"])[1],
        "send": keys.create("sender", ["send"])[1],
        "read": keys.create("reader", ["read"])[1],
    }
    with TestClient(create_app(services)) as client:
        yield Api(services, client, made)
    services.queue.close()
    queue.close()


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    doc = resp.json()
    assert doc["status"] == status
    assert doc["type"].startswith("urn:sms-appliance:problem:")
    assert doc["title"] and doc["detail"]
    return doc


def fields(doc: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["detail"] for e in doc["errors"]}


# ---------------------------------------------------------------------- auth

def test_missing_unknown_and_revoked_keys_are_401_with_a_bearer_challenge(api: Api) -> None:
    r = api.client.get("/v1/messages")
    doc = assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in doc["detail"]

    r = api.client.get("/v1/messages", headers={"Authorization": "Bearer sk_nope_nope"})
    assert "not valid" in assert_problem(r, 401)["detail"]

    r = api.client.get("/v1/messages", headers={"Authorization": f"Basic {api.keys['read']}"})
    assert "Bearer" in assert_problem(r, 401)["detail"]

    key, secret = api.services.keys.create("short-lived", ["read"])
    assert api.client.get("/v1/messages", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    api.services.keys.revoke(key.id)
    assert_problem(api.client.get("/v1/messages", headers={"Authorization": f"Bearer {secret}"}), 401)


def test_a_key_without_the_scope_is_403_naming_the_scope(api: Api) -> None:
    doc = assert_problem(api.post("/v1/messages", "read", json={"to": "+14155550100", "body": "hi"}), 403)
    assert "'send'" in doc["detail"] and "reader" in doc["detail"]
    doc = assert_problem(api.get("/v1/messages", "send"), 403)
    assert "'read'" in doc["detail"]
    doc = assert_problem(api.post("/v1/opt-outs", "send", json={"number": "+14155550100"}), 403)
    assert "'admin'" in doc["detail"]
    # admin allows everything
    assert api.get("/v1/messages", "all").status_code == 200



def test_privacy_asks_for_the_key_before_it_reads_the_number(api: Api) -> None:
    for path in ("/v1/privacy/not-a-number", "/v1/privacy/" + "9" * 65):
        assert_problem(api.client.get(path), 401)
        assert_problem(api.client.post(path + "/erase"), 401)
        assert_problem(api.get(path, "send"), 403)
        assert "number" in fields(assert_problem(api.get(path), 422))
        assert "number" in fields(assert_problem(api.post(path + "/erase"), 422))
    assert api.get("/v1/privacy/%2B14155550100").status_code == 200

# ---------------------------------------------------------------------- send

def test_send_one_normalises_the_number_and_reports_parts_and_encoding(api: Api) -> None:
    r = api.post("/v1/messages", "send", json={"to": "(415) 555-0100", "body": "Grüße ☺"})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["errors"] == []
    [m] = doc["messages"]
    assert m["to"] == "+14155550100"
    assert m["status"] == "queued"
    assert m["encoding"] == "ucs2" and m["parts"] == 1
    got = api.get(f"/v1/messages/{m['id']}", "read").json()
    assert got["to"] == "+14155550100" and got["body"] == "Grüße ☺"
    assert got["status"] == "queued" and got["part_details"] == []


def test_multi_recipient_reports_each_outcome(api: Api) -> None:
    api.services.queue.opt_out("+14155550102", source="test")
    r = api.post("/v1/messages", "send", json={
        "to": ["+14155550101", "12", "+1 415 555 0102", "4155550101"], "body": "hello",
    })
    assert r.status_code == 202, r.text
    doc = r.json()
    # one message per recipient given, in order; a number listed twice gets two
    assert [(m["to"], m["status"]) for m in doc["messages"]] == [
        ("+14155550101", "queued"), ("+14155550102", "suppressed"), ("+14155550101", "queued"),
    ]
    [error] = doc["errors"]
    assert error["to"] == "12" and "not a valid phone number" in error["detail"]


def test_every_recipient_invalid_is_422_naming_each(api: Api) -> None:
    doc = assert_problem(api.post("/v1/messages", "send", json={"to": ["12", "abc"], "body": "x"}), 422)
    assert set(fields(doc)) == {"to.0", "to.1"}
    doc = assert_problem(api.post("/v1/messages", "send", json={"to": "12", "body": "x"}), 422)
    assert set(fields(doc)) == {"to"}
    doc = assert_problem(api.post("/v1/messages", "send", json={"to": ["+15550001111"] * 500, "body": "x"}), 422)
    assert len(doc["errors"]) == 100 and doc["errors"][-1]["field"] == "to.99"
    assert "(and 495 more)" in doc["detail"]
    assert api.services.queue.stats()["queued"] == 0


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"to": "+14155550100", "body": ""}, "body", "empty"),
        ({"to": "+14155550100"}, "body", "required"),
        ({"to": "+14155550100", "body": "x" * 10_001}, "body", "10000"),
        ({"to": "+14155550100", "body": "x" * 500}, "body", "at most 3"),
        ({"to": [], "body": "x"}, "to", "at least 1"),
        ({"to": "+14155550100", "body": "x", "send_at": "2030-01-01T09:00:00"}, "send_at", "timezone"),
        ({"to": "+14155550100", "body": "x", "send_at": "tomorrow"}, "send_at", "datetime"),
        ({"to": "+14155550100", "body": "x", "priority": "urgent"}, "priority", "'high'"),
        ({"to": "+14155550100", "body": "x", "validity_s": 0}, "validity_s", "greater than 0"),
        ({"to": "+14155550100", "body": "x", "colour": "red"}, "colour", "not permitted"),
        ({"to": ["+14155550100", 5], "body": "x"}, "to.1", "string"),
    ],
)
def test_validation_errors_name_the_field(api: Api, payload: dict[str, Any], field: str, words: str) -> None:
    doc = assert_problem(api.post("/v1/messages", "send", json=payload), 422)
    errs = fields(doc)
    assert field in errs, errs
    assert words in errs[field], errs[field]
    assert field in doc["detail"]


def test_too_many_recipients_is_422_and_an_oversize_body_413(api: Api) -> None:
    doc = assert_problem(api.post("/v1/messages", "send", json={"to": ["+14155550100"] * 10_001, "body": "x"}), 422)
    assert "10000" in fields(doc)["to"]
    big = b'{"to": "+14155550100", "body": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = api.post("/v1/messages", "send", content=big, headers={"Content-Type": "application/json"})
    assert "over 2 MB" in assert_problem(r, 413)["detail"]


def test_a_chunked_oversize_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"to": "+14155550100", "body": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = api.post("/v1/messages", "send", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(r, 413)


def test_not_json_is_422_on_the_request_body(api: Api) -> None:
    r = api.post("/v1/messages", "send", content=b"{nope", headers={"Content-Type": "application/json"})
    errs = fields(assert_problem(r, 422))
    assert "not valid JSON" in errs["request_body"]


def test_idempotent_retry_returns_the_first_answer_and_a_different_request_409(api: Api) -> None:
    api.services.queue.opt_out("+14155550102", source="test")
    payload = {"to": ["+14155550101", "+14155550102", "bad"], "body": "once"}
    first = api.post("/v1/messages", "send", json=payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202
    # the first message moves on; the retry still answers what the first request did
    mid = first.json()["messages"][0]["id"]
    api.services.queue.cancel(mid)
    again = api.post("/v1/messages", "send", json=payload, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 202
    assert again.json() == first.json()
    assert api.services.queue.stats()["cancelled"] == 1
    assert len(api.get("/v1/messages", "read").json()["items"]) == 2

    other = api.post("/v1/messages", "send", json={**payload, "body": "twice"}, headers={"Idempotency-Key": "k-1"})
    doc = assert_problem(other, 409)
    assert "k-1" in doc["detail"] and "new key" in doc["detail"]


def test_bulk_ten_thousand_recipients_is_fast(api: Api) -> None:
    numbers = [f"+1415555{i:04d}" for i in range(10_000)]
    started = time.perf_counter()
    r = api.post("/v1/messages", "send", json={"to": numbers, "body": "bulk"})
    elapsed = time.perf_counter() - started
    assert r.status_code == 202, r.text[:300]
    assert len(r.json()["messages"]) == 10_000
    assert api.services.queue.stats()["queued"] == 10_000
    assert elapsed < 5.0, f"10k recipients took {elapsed:.2f} s"


# ---------------------------------------------------------------------- read, list, cancel, resend

def test_get_unknown_message_is_404_and_a_bad_id_422(api: Api) -> None:
    assert "12345" in assert_problem(api.get("/v1/messages/12345", "read"), 404)["detail"]
    assert "message_id" in fields(assert_problem(api.get("/v1/messages/0", "read"), 422))
    # Not digits: no message route has that path.
    assert "no route" in assert_problem(api.get("/v1/messages/abc", "read"), 404)["detail"]


def test_list_is_newest_first_with_cursor_pages_and_filters(api: Api) -> None:
    ids = [api.post("/v1/messages", "send", json={"to": f"+1415555010{i}", "body": f"m{i}"}).json()["messages"][0]["id"]
           for i in range(5)]
    api.services.queue.cancel(ids[1])
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/messages", "read", params=params).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    cancelled = api.get("/v1/messages", "read", params={"status": "cancelled"}).json()["items"]
    assert [m["id"] for m in cancelled] == [ids[1]]
    to = api.get("/v1/messages", "read", params={"to": "(415) 555-0103"}).json()["items"]
    assert [m["id"] for m in to] == [ids[3]]


def test_list_with_bad_filters_names_them(api: Api) -> None:
    errs = fields(assert_problem(api.get("/v1/messages", "read", params={"status": "lost"}), 422))
    assert "queued" in errs["status"]
    assert "limit" in fields(assert_problem(api.get("/v1/messages", "read", params={"limit": 0}), 422))
    assert "to" in fields(assert_problem(api.get("/v1/messages", "read", params={"to": "12"}), 422))
    assert "cursor" in fields(assert_problem(api.get("/v1/messages", "read", params={"cursor": "zz"}), 422))


def test_cancel_only_while_queued(api: Api) -> None:
    mid = api.post("/v1/messages", "send", json={"to": "+14155550100", "body": "x"}).json()["messages"][0]["id"]
    r = api.delete(f"/v1/messages/{mid}", "send")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    doc = assert_problem(api.delete(f"/v1/messages/{mid}", "send"), 409)
    assert "cancelled" in doc["detail"]
    assert_problem(api.delete("/v1/messages/999", "send"), 404)
    events = [e.kind for e in api.services.queue.events(mid)]
    assert "cancelled" in events


def test_resend_only_unknown_or_failed(api: Api) -> None:
    mid = api.post("/v1/messages", "send", json={"to": "+14155550100", "body": "x"}).json()["messages"][0]["id"]
    doc = assert_problem(api.post(f"/v1/messages/{mid}/resend", "send"), 409)
    assert "queued" in doc["detail"]
    with write_tx(api.services.queue.engine) as tx:
        tx.exec_driver_sql("UPDATE messages SET status = 'unknown', error = 'no answer' WHERE id = ?", (mid,))
    r = api.post(f"/v1/messages/{mid}/resend", "send")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["resends"] == 1
    assert_problem(api.post("/v1/messages/999/resend", "send"), 404)


# ---------------------------------------------------------------------- inbound, opt-outs, segments

def test_inbound_lists_received_messages(api: Api) -> None:
    q = api.services.queue
    q.store_inbound("sim-a", "+14155550100", "hello there", digest="d1")
    q.store_inbound("sim-b", "+14155550199", "STOP", digest="d2", keyword="stop")
    q.store_inbound("sim-a", "+14155550100", "half a mess", digest="d3", parts=2, complete=False)
    items = api.get("/v1/inbound", "read").json()["items"]
    assert [i["body"] for i in items] == ["half a mess", "STOP", "hello there"]
    assert items[0]["complete"] is False and items[0]["parts"] == 2
    assert items[1] | {} == {**items[1], "from": "+14155550199", "to_modem": "sim-b", "keyword": "stop"}
    mine = api.get("/v1/inbound", "read", params={"from": "415-555-0100", "limit": 1}).json()
    assert [i["body"] for i in mine["items"]] == ["half a mess"] and mine["next_cursor"]
    rest = api.get("/v1/inbound", "read", params={"from": "415-555-0100", "cursor": mine["next_cursor"]}).json()
    assert [i["body"] for i in rest["items"]] == ["hello there"] and rest["next_cursor"] is None


def test_opt_outs_add_list_remove(api: Api) -> None:
    queued = api.post("/v1/messages", "send", json={"to": "+14155550100", "body": "x"}).json()["messages"][0]["id"]
    r = api.post("/v1/opt-outs", json={"number": "(415) 555-0100", "note": "phoned"})
    assert r.status_code == 201, r.text
    assert r.json()["number"] == "+14155550100" and r.json()["source"] == "api:ops"
    assert api.post("/v1/opt-outs", json={"number": "+14155550100"}).status_code == 200
    assert api.get(f"/v1/messages/{queued}", "read").json()["status"] == "suppressed"
    listed = api.get("/v1/opt-outs", "read").json()
    assert [o["number"] for o in listed["items"]] == ["+14155550100"]
    log = api.services.queue.consent_log("+14155550100")
    assert log[0][1:] == ("opt_out", "api:ops", "phoned")

    assert api.delete("/v1/opt-outs/%2B14155550100").status_code == 204
    assert_problem(api.delete("/v1/opt-outs/%2B14155550100"), 404)
    assert api.get("/v1/opt-outs", "read").json()["items"] == []
    assert "number" in fields(assert_problem(api.post("/v1/opt-outs", json={"number": "12"}), 422))


def test_segments(api: Api) -> None:
    r = api.post("/v1/segments", "read", json={"body": "Hello “world”"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["encoding"] == "gsm7" and doc["parts"] == 1
    assert doc["texts"] == ['Hello "world"']
    assert doc["chars_left"] == 160 - 13 and doc["unit_limit"] == 160
    assert {"original": "“", "replacement": '"'} in doc["replacements"]
    long = api.post("/v1/segments", "read", json={"body": "☺" * 71}).json()
    assert long["encoding"] == "ucs2" and long["parts"] == 2 and long["unit_limit"] == 67
    assert "body" in fields(assert_problem(api.post("/v1/segments", "read", json={}), 422))


# ---------------------------------------------------------------------- health, metrics, docs

def test_healthz_needs_no_key_and_is_degraded_without_modems(api: Api) -> None:
    api.post("/v1/messages", "send", json={"to": "+14155550100", "body": "x"})
    r = api.client.get("/healthz")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "degraded" and doc["modems_online"] == 0 and doc["queue_depth"] == 1
    assert doc["reasons"] == ["no modem is configured"]


def test_healthz_is_503_when_the_database_is_gone(api: Api, tmp_path: Path) -> None:
    engine = dialect(api.services.queue.engine)
    if engine == POSTGRESQL:  # the server stops answering
        api.services.queue = Queue(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone"),
                                   migrate_schema=False)
    else:
        api.services.queue = Queue(tmp_path / "other.db")
        with write_tx(api.services.queue.engine) as tx:
            tx.exec_driver_sql("DROP TABLE messages")
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded" and r.json()["queue_depth"] is None
    # The driver's error arrives as DatabaseUnavailable, named with its engine.
    assert any(reason.startswith(f"the database did not answer: the {engine} database: ")
               for reason in r.json()["reasons"]), r.json()["reasons"]
    scrape = api.get("/metrics", "read")
    assert scrape.status_code == 200 and "appliance_store_up 0.0" in scrape.text


def test_metrics_exposes_the_families(api: Api) -> None:
    api.post("/v1/messages", "send", json={"to": ["+14155550100", "+14155550101"], "body": "x"})
    q = api.services.queue
    with write_tx(q.engine) as tx:
        tx.exec_driver_sql("INSERT INTO send_log (modem, at) VALUES ('sim-a', ?), ('sim-a', ?)", (1.0, 2.0))
        tx.exec_driver_sql(
            "INSERT INTO webhook_outbox (event_id, url, event, payload, created_at, attempts, next_attempt_at) "
            "VALUES ('e1', 'http://x/', 'inbound', '{}', 0, 3, 0), ('e2', 'http://x/', 'inbound', '{}', 0, 0, 0)"
        )
    q.store_inbound("sim-a", "+14155550100", "hi", digest="d1")
    api.services.metrics.observe_send("sim-a", 1.5)
    assert_problem(api.client.get("/metrics"), 401)
    r = api.get("/metrics", "read")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'appliance_messages{state="queued"} 2.0',
        "appliance_queue_depth 2.0",
        'appliance_parts_sent_total{modem="sim-a"} 2.0',
        'appliance_send_seconds_bucket{le="2.0",modem="sim-a"} 1.0',
        'appliance_send_seconds_count{modem="sim-a"} 1.0',
        "appliance_inbound_messages_total 1.0",
        "appliance_webhook_failing_deliveries 1.0",
        "appliance_webhook_failed_attempts 3.0",
        "appliance_store_up 1.0",
    ):
        assert line in text, line
    # a second app has its own registry
    other = create_app(api.services)
    assert other.state.metrics.registry is not api.client.app.state.metrics.registry  # type: ignore[attr-defined]


def test_unknown_route_is_a_problem_and_docs_are_served(api: Api) -> None:
    doc = assert_problem(api.get("/v1/nope"), 404)
    assert "/docs" in doc["detail"]
    assert_problem(api.client.get("/v1/nope"), 401)  # without a key: the key is checked first
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert spec["info"]["title"] == "SMS appliance"
    assert {t["name"] for t in spec["tags"]} >= {"messages", "inbound", "modems", "opt-outs", "segments", "system"}
    post = spec["paths"]["/v1/messages"]["post"]
    assert "202" in post["responses"]
    assert post["responses"]["422"]["content"] == {
        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert post["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert spec["components"]["schemas"]["SendRequest"]["examples"]


def test_send_at_in_the_future_stays_queued(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    m = api.post("/v1/messages", "send", json={"to": "+14155550100", "body": "later", "send_at": later}).json()
    got = api.get(f"/v1/messages/{m['messages'][0]['id']}", "read").json()
    assert datetime.fromisoformat(got["send_at"]) == datetime.fromisoformat(later)
