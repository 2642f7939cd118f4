"""Per-number privacy requests: export and erase (CLI and service) on both engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.cli import app
from appliance.db import contacts as contacts_db
from appliance.db.engine import read_tx, write_tx
from appliance.privacy import erase_number, export_number
from appliance.queue import Queue
from tests.utils.clock import FakeClock
from tests.utils.privacy import postgres_tables_containing, spread_text, sqlite_bytes_after_vacuum

runner = CliRunner()
NUMBER, OTHER = "+14155550100", "+14155550199"


@pytest.fixture
def queue(db_url: str) -> Any:
    q = Queue(db_url, clock=FakeClock())
    yield q
    q.close()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[appliance]\ndatabase_url = "{db_url}"\n')
    return path


def _fill(queue: Queue) -> dict[str, int]:
    now = queue.clock()
    with write_tx(queue.engine) as tx:
        cid = contacts_db.insert_contact(tx, contacts_db.NewContact(NUMBER, "Ann", "Lee", {"ward": "7"}), now)
        gid = contacts_db.ensure_group(tx, "clinic", now)
        contacts_db.add_member(tx, gid, cid, now)
        contacts_db.insert_contact(tx, contacts_db.NewContact(OTHER, "Bob", "Ray", {}), now)
    done = queue.enqueue([NUMBER], "Ann: your test came back clear")[0].id
    queue.cancel(done)
    waiting = queue.enqueue([NUMBER], "Ann: see you on Friday", send_at=now + 86400)[0].id
    other = queue.enqueue([OTHER], "Bob: your prescription is ready")[0].id
    queue.store_inbound("m1", NUMBER, "Thank you doctor", digest="a", handled=True)
    queue.store_inbound("m1", OTHER, "Bob here", digest="b", handled=True)
    queue.opt_out(NUMBER, source="test", note="asked by phone")
    return {"done": done, "waiting": waiting, "other": other}


def _export(config: Path, number: str) -> dict[str, Any]:
    result = runner.invoke(app, ["privacy", "export", number, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_export_then_erase_round_trip(queue: Queue, config: Path) -> None:
    ids = _fill(queue)
    before = _export(config, "+1 415 555 0100")  # as people type it
    assert before["number"] == NUMBER and before["opted_out"] is True
    assert [m["body"] for m in before["messages"]] == ["Ann: your test came back clear", "Ann: see you on Friday"]
    assert [m["body"] for m in before["inbound"]] == ["Thank you doctor"]
    assert before["contact"]["first_name"] == "Ann" and before["contact"]["groups"] == ["clinic"]
    assert before["contact"]["fields"] == {"ward": "7"}
    assert [(c["action"], c["note"]) for c in before["consent"]] == [("opt_out", "asked by phone")]
    assert before == export_number(queue.engine, NUMBER)

    refused = runner.invoke(app, ["privacy", "erase", "(415) 555-0100", "--config", str(config)], input="n\n")
    assert refused.exit_code != 0 and queue.get(ids["done"]).body != ""
    done = runner.invoke(app, ["privacy", "erase", "(415) 555-0100", "--yes", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "contact deleted, 0 queued message(s) cancelled, 2 message bodies and 1 inbound texts" in done.output
    assert "still on the opt-out list" in done.output

    after = _export(config, NUMBER)
    assert after["contact"] is None and after["opted_out"] is True
    assert [(m["body"], m["redacted"], m["status"]) for m in after["messages"]] == [
        ("", True, "cancelled"), ("", True, "suppressed")]  # the opt-out suppressed the waiting one
    assert [(m["body"], m["redacted"]) for m in after["inbound"]] == [("", True)]
    assert after["consent"] == before["consent"]  # the law needs it
    # The other number is untouched.
    assert queue.get(ids["other"]).body == "Bob: your prescription is ready"
    theirs = export_number(queue.engine, OTHER)
    assert theirs["contact"]["first_name"] == "Bob" and theirs["inbound"][0]["body"] == "Bob here"
    with read_tx(queue.engine) as tx:
        assert tx.exec_driver_sql("SELECT COUNT(*) AS n FROM group_members").scalar() == 0
        assert contacts_db.find_group(tx, "clinic") is not None  # the group stays
    # Still never texted.
    again = queue.enqueue([NUMBER], "Ann: a new appointment")[0]
    assert again.status == "suppressed"


def test_erasing_a_number_that_is_not_opted_out_does_not_opt_it_out(queue: Queue) -> None:
    queue.store_inbound("m1", OTHER, "hello", digest="c", handled=True)
    waiting = queue.enqueue([OTHER], "Bob: see you on Friday", send_at=queue.clock() + 86400)[0]
    report = erase_number(queue.engine, OTHER, by="test")
    assert (report.contact_deleted, report.inbound_bodies, report.still_opted_out) == (False, 1, False)
    assert (report.messages_cancelled, report.message_bodies) == (1, 1)  # never sent with an empty body
    view = queue.get(waiting.id)
    assert (view.status, view.body, view.redacted) == ("cancelled", "", True)
    assert erase_number(queue.engine, OTHER, by="test").inbound_bodies == 0  # once only
    assert queue.enqueue([OTHER], "hi")[0].status == "queued"


@pytest.mark.parametrize("typed", ["", "not a number", "+1 415 555", "12"])
def test_the_cli_refuses_what_is_not_a_number(config: Path, typed: str) -> None:
    for verb in (["export", typed], ["erase", typed, "--yes"]):
        result = runner.invoke(app, ["privacy", *verb, "--config", str(config)])
        assert result.exit_code == 1 and "NUMBER" in result.output, result.output


def test_erase_also_reaches_webhook_payloads_emails_and_waiting_parts(db_url: str, queue: Queue) -> None:
    secret, theirs = "secret-kilo my ward number is 7", "secret-lima other number's text"
    queue.store_inbound("m1", NUMBER, secret, digest="k1", handled=True)
    queue.store_inbound("m1", OTHER, theirs, digest="l1", handled=True)
    spread_text(queue, NUMBER, secret, tag="kilo")
    spread_text(queue, OTHER, theirs, tag="lima")
    report = erase_number(queue.engine, NUMBER, by="test")
    # JSON and form payloads emptied, the reply and the copy mailed, the waiting part.
    assert (report.webhook_payloads, report.emails, report.fragments) == (2, 2, 1)
    from appliance.db import email as email_db

    with read_tx(queue.engine) as tx:
        payloads = {r["event_id"][:4]: r["payload"] for r in tx.exec_driver_sql(
            "SELECT event_id, payload FROM webhook_outbox WHERE payload NOT LIKE '%lima%'")}
        assert email_db.get_thread(tx, NUMBER) is None and email_db.get_thread(tx, OTHER) is not None
    assert json.loads(payloads["inb_"])["data"]["body"] == "" and json.loads(payloads["inb_"])["data"]["redacted"]
    assert "Body=&" in payloads["twin"] or payloads["twin"].endswith("Body=")
    gone = ["secret-kilo", "kilo subject", "kilo-pdu", "kilo-refused"]
    if db_url.startswith("sqlite"):
        queue.close()
        data = sqlite_bytes_after_vacuum(db_url)
        assert [s for s in gone if s.encode() in data] == []
        assert b"secret-lima" in data and b"lima subject" in data and b"lima-refused" in data
    else:
        assert {s: postgres_tables_containing(queue.engine, s) for s in gone} == {s: [] for s in gone}
        assert set(postgres_tables_containing(queue.engine, "secret-lima")) == {
            "inbound", "webhook_outbox", "email_outbox", "inbound_fragments"}
        assert postgres_tables_containing(queue.engine, "lima-refused") == ["email_refusals"]
