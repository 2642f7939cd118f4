"""Retention: what is erased and pruned (and what is not), on both engines; dry runs; the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.api.schemas import MessageSummary
from appliance.cli import app
from appliance.config import RetentionSection
from appliance.db.engine import read_tx
from appliance.queue import Queue
from appliance.retention import DAY_S, Retention
from tests.utils.clock import FakeClock
from tests.utils.privacy import postgres_tables_containing, spread_text, sqlite_bytes_after_vacuum

runner = CliRunner()
SECRETS = {
    "sent": "secret-alpha sent long ago",
    "cancelled": "secret-bravo cancelled",
    "suppressed": "secret-charlie suppressed",
    "queued": "secret-delta still queued",
    "recent": "secret-golf sent lately",
}
INBOUND_OLD = "secret-echo old reply"
INBOUND_UNHANDLED = "secret-fox not handled yet"
NOTHING = {"message_bodies": 0, "inbound_bodies": 0, "events": 0, "send_log": 0, "webhook_payloads": 0, "emails": 0,
           "email_threads": 0, "fragments": 0, "audit": 0}


def _send(queue: Queue, modem: str = "m1") -> None:
    claim = queue.claim(modem, max_parts=255)
    assert claim is not None
    for part in claim.parts:
        assert queue.begin_part(claim, part, queue.clock()) == "go"
        queue.part_sent(claim, part, 7, queue.clock())


def _fill(queue: Queue, clock: FakeClock) -> dict[str, int]:
    """Messages in every kind of state 91 days ago, one sent 1 hour ago, inbound texts."""
    ids: dict[str, int] = {}
    queue.upsert_modem("m1", state="online")
    ids["sent"] = queue.enqueue(["+14156410011"], SECRETS["sent"])[0].id
    _send(queue)
    ids["cancelled"] = queue.enqueue(["+14156410012"], SECRETS["cancelled"])[0].id
    queue.cancel(ids["cancelled"])
    queue.opt_out("+14156410013", source="test")
    ids["suppressed"] = queue.enqueue(["+14156410013"], SECRETS["suppressed"])[0].id
    ids["queued"] = queue.enqueue(["+14156410014"], SECRETS["queued"], send_at=clock() + 400 * DAY_S)[0].id
    queue.store_inbound("m1", "+14156410011", INBOUND_OLD, digest="d1", handled=True)
    queue.store_inbound("m1", "+14156410015", INBOUND_UNHANDLED, digest="d2", handled=False)
    clock.advance(91 * DAY_S)
    ids["recent"] = queue.enqueue(["+14156410016"], SECRETS["recent"])[0].id
    _send(queue)
    clock.advance(3600)
    return ids


def _snapshot(queue: Queue) -> dict[str, list[Any]]:
    with read_tx(queue.engine) as tx:
        return {t: [tuple(r) for r in tx.exec_driver_sql(f"SELECT * FROM {t} ORDER BY 1")]
                for t in ("messages", "inbound", "events", "send_log", "opt_outs", "consent_log")}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db_url: str, clock: FakeClock) -> Any:
    q = Queue(db_url, clock=clock)
    yield q
    q.close()


def test_retention_erases_finished_bodies_and_old_logs_only(db_url: str, queue: Queue, clock: FakeClock) -> None:
    ids = _fill(queue, clock)
    job = Retention(queue.engine, RetentionSection(body_days=90, log_days=0, batch=2), clock=clock)
    before = _snapshot(queue)
    dry = job.run(dry_run=True)
    assert dry.dry_run and (dry.message_bodies, dry.inbound_bodies, dry.send_log) == (3, 1, 1)
    assert dry.events > 0
    assert _snapshot(queue) == before  # a dry run changes nothing

    report = job.run()
    assert report.counts() == {**NOTHING, "message_bodies": 3, "inbound_bodies": 1, "events": dry.events, "send_log": 1}
    for kind in ("sent", "cancelled", "suppressed"):
        view = queue.get(ids[kind])
        assert (view.body, view.redacted) == ("", True)
        assert view.status == kind and view.parts >= 1  # the row stays with its state
        shown = MessageSummary.of(view).model_dump()
        assert (shown["body"], shown["redacted"]) == ("", True)
    for kind in ("queued", "recent"):  # unfinished, or inside the window
        view = queue.get(ids[kind])
        assert (view.body, view.redacted) == (SECRETS[kind], False)
    assert MessageSummary.of(queue.get(ids["recent"])).redacted is False
    bodies = {v.body for v in queue.list_inbound().items}
    assert bodies == {"", INBOUND_UNHANDLED}
    after = _snapshot(queue)
    # log_days = 0, yet the send-log row of 1 hour ago stays: the day cap still counts it.
    with read_tx(queue.engine) as tx:
        left = [(r["message_id"], r["at"]) for r in tx.exec_driver_sql("SELECT message_id, at FROM send_log")]
    assert left == [(ids["recent"], clock() - 3600)]
    assert after["opt_outs"] == before["opt_outs"] and after["consent_log"] == before["consent_log"]
    assert job.run().counts() == NOTHING

    gone = [SECRETS["sent"], SECRETS["cancelled"], SECRETS["suppressed"], INBOUND_OLD]
    kept = [SECRETS["queued"], SECRETS["recent"], INBOUND_UNHANDLED]
    if db_url.startswith("sqlite"):
        queue.close()
        data = sqlite_bytes_after_vacuum(db_url)
        assert [s for s in gone if s.encode() in data] == []
        assert all(s.encode() in data for s in kept)
    else:
        assert {s: postgres_tables_containing(queue.engine, s) for s in gone} == {s: [] for s in gone}
        assert postgres_tables_containing(queue.engine, SECRETS["queued"]) == ["messages"]


def test_nothing_is_erased_inside_the_windows(queue: Queue, clock: FakeClock) -> None:
    _fill(queue, clock)
    job = Retention(queue.engine, RetentionSection(body_days=365, log_days=365), clock=clock)
    before = _snapshot(queue)
    assert job.run().counts() == NOTHING
    assert _snapshot(queue) == before


def test_a_run_is_cut_in_batches(queue: Queue, clock: FakeClock) -> None:
    for i in range(7):
        m = queue.enqueue([f"+1415641{i:04d}"], f"secret {i}")[0]
        queue.cancel(m.id)
    clock.advance(2 * DAY_S)
    job = Retention(queue.engine, RetentionSection(body_days=1, batch=3), clock=clock)
    assert job.run().message_bodies == 7
    assert {m.body for m in queue.list().items} == {""}


def test_the_cli_prints_what_it_would_erase_then_erases(tmp_path: Path, db_url: str, queue: Queue,
                                                         clock: FakeClock) -> None:
    m = queue.enqueue(["+14156410011"], "secret cli")[0]
    queue.cancel(m.id)
    config = tmp_path / "appliance.toml"
    config.write_text(f'[appliance]\ndatabase_url = "{db_url}"\n[retention]\nbody_days = 0\n')
    dry = runner.invoke(app, ["retention", "run", "--dry-run", "--config", str(config)])
    assert dry.exit_code == 0, dry.output
    assert "would erase/prune        1 message bodies" in dry.output
    assert queue.get(m.id).body == "secret cli"
    done = runner.invoke(app, ["retention", "run", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "erased/pruned        1 message bodies" in done.output
    assert queue.get(m.id).redacted


def test_the_daemon_thread_runs_and_stops(queue: Queue, clock: FakeClock) -> None:
    m = queue.enqueue(["+14156410011"], "secret thread")[0]
    queue.cancel(m.id)
    clock.advance(DAY_S)
    job = Retention(queue.engine, RetentionSection(body_days=0.5), clock=clock)
    job.start(first_after_s=0.0, every_s=3600)
    try:
        import time

        deadline = time.monotonic() + 20
        while not queue.get(m.id).redacted and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        job.stop()
    assert queue.get(m.id).redacted


def test_retention_also_clears_webhook_payloads_emails_and_waiting_parts(db_url: str, queue: Queue,
                                                                         clock: FakeClock) -> None:
    queue.store_inbound("m1", "+14156410011", "secret-mike old text", digest="m1", handled=True)
    spread_text(queue, "+14156410011", "secret-mike old text", tag="mike")
    clock.advance(91 * DAY_S)
    queue.store_inbound("m1", "+14156410012", "secret-november new text", digest="n1", handled=True)
    spread_text(queue, "+14156410012", "secret-november new text", tag="november")
    job = Retention(queue.engine, RetentionSection(body_days=90, log_days=365, batch=1), clock=clock)
    dry = job.run(dry_run=True)
    wanted = {"webhook_payloads": 2, "emails": 2, "email_threads": 1, "fragments": 1}
    assert {k: dry.counts()[k] for k in wanted} == wanted
    report = job.run()
    assert {k: report.counts()[k] for k in wanted} == wanted and report.inbound_bodies == 1
    assert job.run().counts() == NOTHING
    gone = ["secret-mike", "mike subject", "mike-pdu"]
    if db_url.startswith("sqlite"):
        queue.close()
        data = sqlite_bytes_after_vacuum(db_url)
        assert [s for s in gone if s.encode() in data] == []
        assert b"secret-november" in data and b"november subject" in data
    else:
        assert {s: postgres_tables_containing(queue.engine, s) for s in gone} == {s: [] for s in gone}
        assert set(postgres_tables_containing(queue.engine, "secret-november")) == {
            "inbound", "webhook_outbox", "email_outbox", "inbound_fragments"}
