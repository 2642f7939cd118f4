"""The charts: server-drawn SVG with a title, a description and a table of every number
(the dashboard's last 7 days and each modem's signal, a broadcast's sends per hour and
outcome shares), on both engines; the signal sampler over a simulated modem."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from appliance.config import ModemConfig
from appliance.db import signals as signals_db
from appliance.db.engine import read_tx, write_tx
from appliance.db.signals import SignalSampleIn
from appliance.modem import ManagedModem
from appliance.modem.simulator import SimulatedModem
from appliance.signals import PRUNE_BATCH, SignalSampler
from appliance.web.chart_data import day_bounds
from appliance.web.charts import Segment, bar_chart, line_chart, share_bar
from tests.utils.wait import wait_until
from tests.utils.web_app import PageServices, signed_in_pages

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

FAST = dict(poll_interval=0.2, command_timeout=0.5, probe_timeout=0.4, backoff_initial=0.1,
            backoff_max=0.4, boot_timeout=2.0, resync_timeout=0.6, send_timeout=3.0)
DAY = 86400.0


def figures(page: str) -> dict[str, str]:
    """Each chart's <figure> by its id."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<figure class="chart" id="([^"]+)">.*?</figure>', page, re.DOTALL)}


def table_rows(figure: str) -> list[list[str]]:
    body = figure.split("<tbody>", 1)[1]
    return [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def assert_accessible(figure: str) -> None:
    svg = re.search(r"<svg [^>]*>", figure)
    assert svg is not None
    assert 'role="img"' in svg.group(0) and "viewBox=" in svg.group(0)
    labelled = re.search(r'aria-labelledby="([^"]+) ([^"]+)"', svg.group(0))
    assert labelled is not None
    assert f'<title id="{labelled.group(1)}">' in figure and f'<desc id="{labelled.group(2)}">' in figure
    assert "<details" in figure and "<table>" in figure
    assert "style=" not in figure and "<script" not in figure  # the pages' CSP allows neither


# ---------------------------------------------------------------------- the drawing


def test_bar_chart_names_itself_and_carries_every_number_as_text() -> None:
    chart = str(bar_chart("c1", title="Sent per day", labels=["Mon 1", "Tue 2", "<b>"], values=[3, 1204, 0],
                          unit="messages"))
    assert_accessible(chart)
    assert table_rows(chart) == [["Mon 1", "3"], ["Tue 2", "1,204"], ["<b>", "0"]]
    assert "<b>" not in chart and "&lt;b&gt;" in chart  # labels are escaped
    assert "1,207 messages in all" in chart and "the most, 1,204, at Tue 2" in chart
    assert ">1,204</text>" in chart  # the value is written on the chart too
    empty = str(bar_chart("c2", title="Failed", labels=["a"], values=[0], unit="messages"))
    assert "No messages in this period." in empty


def test_share_bar_hatches_failures_and_says_each_share_in_words() -> None:
    chart = str(share_bar("s", title="Outcome", segments=[Segment("Delivered", 75, "ok"), Segment("Failed", 25, "bad")]))
    assert_accessible(chart)
    assert table_rows(chart) == [["Delivered", "75", "75%"], ["Failed", "25", "25%"]]
    assert 'fill="url(#s-hatch)"' in chart and "Delivered 75 (75%); Failed 25 (25%), of 100." in chart
    assert "Nothing yet." in str(share_bar("e", title="Outcome", segments=[Segment("Delivered", 0, "ok")]))


def test_line_chart_breaks_where_there_was_no_reading() -> None:
    chart = str(line_chart("l", title="Signal", points=[(0, -70), (1, -72), (2, None), (3, -80), (4, -81)],
                           start=0, end=4, y_min=-113, y_max=-51, unit="dBm", x_ticks=[(2, "mid")],
                           table=[("00:00", "-72 dBm", "-70 dBm")], table_head=("Hour", "Lowest", "Highest"),
                           desc="Signal went down."))
    assert_accessible(chart)
    assert chart.count("<polyline") == 2


# ---------------------------------------------------------------------- the pages


@pytest.fixture
def pages(db_url: str) -> Iterator[tuple[PageServices, TestClient]]:
    with signed_in_pages(db_url) as made:
        yield made


def test_dashboard_draws_the_last_seven_days(pages: Any) -> None:
    services, client = pages
    zone = ZoneInfo(services.settings.broadcasts.timezone)
    bounds = day_bounds(zone, 7)
    today, two_days_ago = bounds[6] + 60, bounds[4] + 3600
    made = services.queue.enqueue([f"+1415555{i:04d}" for i in range(6)], "x")
    ids = [m.id for m in made]
    with write_tx(services.queue.engine) as tx:
        for mid in ids[:3]:  # delivered today
            tx.exec_driver_sql("UPDATE messages SET status = 'delivered', sent_at = ?, delivered_at = ?, "
                               "updated_at = ? WHERE id = ?", (today, today, today, mid))
        tx.exec_driver_sql("UPDATE messages SET status = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
                           (two_days_ago, two_days_ago, ids[3]))
        tx.exec_driver_sql("UPDATE messages SET status = 'failed', updated_at = ? WHERE id = ?", (two_days_ago, ids[4]))
        # Older than the window: not counted.
        tx.exec_driver_sql("UPDATE messages SET status = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
                           (bounds[0] - DAY, bounds[0] - DAY, ids[5]))
    services.queue.store_inbound("sim-a", "+14155550001", "thanks", digest="r1", received_at=today)
    page = client.get("/")
    assert page.status_code == 200
    charts = figures(page.text)
    for key in ("sent", "delivered", "failed", "replies"):
        assert_accessible(charts[f"chart-{key}"])
    sent = [int(r[1]) for r in table_rows(charts["chart-sent"])]
    assert len(sent) == 7 and sent[6] == 3 and sent[4] == 1 and sum(sent) == 4
    assert [int(r[1]) for r in table_rows(charts["chart-delivered"])][6] == 3
    assert [int(r[1]) for r in table_rows(charts["chart-failed"])][4] == 1
    assert sum(int(r[1]) for r in table_rows(charts["chart-replies"])) == 1
    # The live refresh does not redraw them.
    assert "<figure" not in client.get("/dashboard/live").text


def test_a_broadcast_page_draws_sends_per_hour_and_outcome_shares(pages: Any) -> None:
    services, client = pages
    token = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/compose").text)
    assert token is not None
    created = client.post("/compose/send", data={
        "csrf_token": token.group(1),
        "numbers": "+14155550001\n+14155550002\n+14155550003\n+14155550004", "text": "Trip",
        "kind": "transactional", "when": "now", "name": "Trip",
    }, follow_redirects=False)
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    hour = (int(time.time()) // 3600 - 2) * 3600
    with write_tx(services.queue.engine) as tx:
        ids = [int(r["id"]) for r in tx.exec_driver_sql("SELECT id FROM messages ORDER BY id")]
        for i, (mid, status) in enumerate(zip(ids, ("delivered", "delivered", "delivered", "failed"), strict=True)):
            sent_at = hour + 60 if i < 2 else hour + 2 * 3600 + 60
            tx.exec_driver_sql("UPDATE messages SET status = ?, sent_at = ?, updated_at = ? WHERE id = ?",
                               (status, sent_at if status != "failed" else None, sent_at, mid))
    page = client.get(location)
    assert page.status_code == 200
    charts = figures(page.text)
    assert_accessible(charts["chart-share"])
    assert table_rows(charts["chart-share"])[:3] == [
        ["Delivered", "3", "75%"], ["Sent, no delivery report yet", "0", "0%"], ["Failed", "1", "25%"]]
    assert_accessible(charts["chart-per-hour"])
    assert [r[1] for r in table_rows(charts["chart-per-hour"])] == ["2", "0", "1"]  # the empty hour is shown


# ---------------------------------------------------------------------- the signal


@pytest.fixture
def online_modem(sim800: SimulatedModem, sim_link_dir: Path) -> Iterator[ManagedModem]:
    modem = ManagedModem(ModemConfig(name="sim-a", port=sim800.path), scan_patterns=[str(sim_link_dir / "ttyUSB*")],
                         on_sms=lambda _: None, on_status_report=lambda _: None, **FAST)  # type: ignore[arg-type]
    modem.start()
    try:
        assert modem.wait_online(5)
        yield modem
    finally:
        modem.stop(timeout=2)


def test_signal_is_sampled_from_the_workers_reading_charted_and_pruned(
        pages: Any, online_modem: ManagedModem) -> None:
    services, client = pages
    engine = services.queue.engine
    now = time.time()
    with write_tx(engine) as tx:  # a week and a bit of old samples, more than one prune batch
        signals_db.record_samples(tx, [SignalSampleIn("sim-a", now - 8 * DAY + i, 10, -93, 2)
                                       for i in range(PRUNE_BATCH + 20)])
        signals_db.record_samples(tx, [SignalSampleIn("sim-a", now - 3600, None, None, None),
                                       SignalSampleIn("sim-a", now - 1800, 20, -73, 4)])
    offline = type("Offline", (), {"name": "sim-b", "online": False, "signal": None})()
    sampler = SignalSampler(engine, lambda: [online_modem, offline], node="n1", clock=lambda: now)
    assert sampler.sample() == 2
    with read_tx(engine) as tx:
        series = signals_db.signal_series(tx, ["sim-a", "sim-b"], since=now - 10 * DAY)
        assert tx.exec_driver_sql("SELECT COUNT(*) FROM signal_samples WHERE at < ?", (now - 7 * DAY,)).scalar() == 0
    sig = online_modem.signal
    assert sig is not None
    assert [(p.dbm, p.bars) for p in series["sim-a"]] == [(None, None), (-73, 4), (sig.dbm, sig.bars)]
    assert [(p.dbm, p.bars) for p in series["sim-b"]] == [(None, None)]  # offline: a gap in the line

    services.modems.append(online_modem)
    charts = figures(client.get("/").text)
    chart = charts["chart-signal-sim-a"]
    assert_accessible(chart)
    assert f"latest {sig.dbm} dBm ({sig.bars}/5 bars)" in chart and "1 of 3 samples had no signal" in chart
    hours = table_rows(chart)
    assert any(r[1] == "-73 dBm" for r in hours) and any(r[1] == f"{sig.dbm} dBm" for r in hours)


def test_the_sampler_thread_samples_on_its_period_and_zero_turns_it_off(
        online_modem: ManagedModem, db_url: str) -> None:
    from appliance.queue import Queue

    queue = Queue(db_url)
    try:
        off = SignalSampler(queue.engine, lambda: [online_modem], every_s=0)
        off.start()
        assert not off.running
        sampler = SignalSampler(queue.engine, lambda: [online_modem], every_s=0.05)
        sampler.start()
        try:
            assert sampler.running
            assert wait_until(lambda: _samples(queue.engine) >= 3, timeout=5)
        finally:
            sampler.stop()
        assert not sampler.running
    finally:
        queue.close()


def _samples(engine: Any) -> int:
    with read_tx(engine) as tx:
        return int(tx.exec_driver_sql("SELECT COUNT(*) FROM signal_samples").scalar())
