"""Issue 15 item 2: SIM health. A SIM whose sends keep failing (or that the operator bars) is
paused, its work goes to the other SIMs, ``modem.paused`` / ``modem.resumed`` go to the
webhooks, a probe after the cool-down or an admin (API, web button, command line) resumes
it; the pause survives a restart. End to end on the pty simulator and a live appliance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.cli import app as cli
from appliance.config import ConfigError, SimHealthSection, load_settings
from appliance.modem.errors import ModemDisconnected, SendOutcomeUnknown, SendRejected
from appliance.pdu import encode_submit
from appliance.queue import Backoff
from appliance.queue.sim_health import SendWindow
from tests.utils.field import HookReceiver, wait_until

Factory = Callable[..., Any]
HOOK_EVENTS = ["status", "modem.paused", "modem.resumed"]


@pytest.fixture
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    yield receiver
    receiver.close()


def _start(factory: Factory, hooks: HookReceiver, db_url: str, *, simulate: int = 2,
           **sim_health: Any) -> Any:
    server = factory(simulate=simulate, settings={
        "appliance": {"database_url": db_url},
        "node": {"name": "hn"},
        "health": {"sim": {"cooldown_s": 3600, **sim_health}},
        "webhooks": [{"url": hooks.url, "events": HOOK_EVENTS}],
    })
    server.app.queue.backoff = Backoff(base_s=0.01, cap_s=0.05, jitter=0)  # retries at once
    return server


def _names(server: Any) -> list[str]:
    return [m.name for m in server.app.modems]


def _health(server: Any, name: str) -> dict[str, Any]:
    with server.client() as c:
        r = c.get("/v1/modems")
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["modems"] if m["name"] == name)["health"]


def _send(server: Any, *bodies: str, to: str = "+14155550100") -> list[int]:
    ids = []
    with server.client() as c:
        for body in bodies:
            r = c.post("/v1/messages", json={"to": to, "body": body})
            assert r.status_code == 202, r.text
            ids.append(r.json()["messages"][0]["id"])
    return ids


def _message(server: Any, mid: int) -> dict[str, Any]:
    with server.client() as c:
        return c.get(f"/v1/messages/{mid}").json()


def _audit(server: Any, action: str) -> list[tuple[str, str, str | None]]:
    from appliance.audit import AuditFilter, AuditLog

    lines = AuditLog(server.app.queue.engine).list(AuditFilter(action=action), limit=100).items
    return [(line.actor_kind, line.actor, line.target) for line in lines]


def _events(hooks: HookReceiver, kind: str, modem: str) -> list[dict[str, Any]]:
    return [b["data"] for b in hooks.of_type(kind) if b["data"]["modem"] == modem]


# ---------------------------------------------------------------------- end to end


def test_failures_in_a_row_pause_and_the_other_sim_takes_the_work(live_server_factory: Factory,
                                                                     hooks: HookReceiver, db_url: str) -> None:
    server = _start(live_server_factory, hooks, db_url)
    a, b = _names(server)
    sim_a, sim_b = server.simulators
    with server.client() as c:
        # b paused by an admin first, so that a alone takes the work and fails it.
        r = c.post(f"/v1/modems/{b}/pause", json={"reason": "SIM swap"})
        assert r.status_code == 200, r.text
        assert r.json()["changed"] is True and r.json()["health"]["reason"] == "SIM swap"
        assert r.json()["health"]["probe_at"] is None  # an admin's pause: no probe
        again = c.post(f"/v1/modems/{b}/pause")
        assert again.status_code == 200 and again.json()["changed"] is False
        sim_a.fail_sends(42, 5)  # congestion, five times
        ids = _send(server, "one", "two", "three")
        paused = wait_until(lambda: (h := _health(server, a))["paused"] and h, what="a paused")
        assert paused["reason"].startswith("5 sends failed in a row") and "+CMS ERROR 42" in paused["reason"]
        assert paused["by"] == "health check" and paused["strikes"] == 1 and paused["probe_at"]
        assert sim_a.sent == []
        event = wait_until(lambda: _events(hooks, "modem.paused", a), what="the modem.paused webhook")[0]
        assert event["reason"] == paused["reason"] and event["failures_in_row"] == 5 and event["code"] == 42
        assert event["cooldown_s"] == 3600 and event["strikes"] == 1
        # a paused SIM is in /healthz, /metrics and systemd's status line
        from appliance.supervision import Supervisor

        assert "2/2 modems online (2 paused), " in Supervisor(server.app, watchdog_s=0).status_line()
        assert any(f"modem {a} is paused" in reason for reason in c.get("/healthz").json()["reasons"])
        metrics = c.get("/metrics").text
        assert f'appliance_modem_paused{{modem="{a}"}} 1.0' in metrics
        assert f'appliance_modem_paused{{modem="{b}"}} 1.0' in metrics
        # b resumed by the admin: it sends a's work; a stays paused
        r = c.post(f"/v1/modems/{b}/resume")
        assert r.status_code == 200 and r.json()["changed"] is True
        assert r.json()["health"]["resumed_by"] == "admin:test-admin"
        for mid in ids:
            done = wait_until(lambda: (m := _message(server, mid))["status"] == "sent" and m, what="sent")
            assert done["modem"] == b
        assert sim_a.sent == [] and len(sim_b.sent) == 3
        resumed = wait_until(lambda: _events(hooks, "modem.resumed", b), what="the modem.resumed webhook")[0]
        assert resumed["by"] == "admin:test-admin" and resumed["reason"] == "SIM swap"
        assert _health(server, a)["paused"] is True
        assert f'appliance_modem_paused{{modem="{b}"}} 0.0' in c.get("/metrics").text
    # the admin's actions are in the audit trail (the health check's are events, not audit lines)
    assert _audit(server, "modem.pause") == [("key", "test-admin", b)]
    assert _audit(server, "modem.resume") == [("key", "test-admin", b)]


def test_a_barring_error_pauses_at_once_and_the_probe_resumes(live_server_factory: Factory,
                                                              hooks: HookReceiver, sqlite_url: str) -> None:
    server = _start(live_server_factory, hooks, sqlite_url, simulate=1, cooldown_s=0.3, cooldown_max_s=0.6)
    [name] = _names(server)
    [sim] = server.simulators
    sim.set_network(False)  # the first probe finds it unregistered
    sim.fail_sends(50)  # requested facility not subscribed: a barring error
    [mid] = _send(server, "barred")
    assert wait_until(lambda: _message(server, mid)["status"] == "failed")
    first = wait_until(lambda: _events(hooks, "modem.paused", name), what="paused")[0]
    assert first["code"] == 50 and "barring" in first["reason"] and first["failures_in_row"] == 1
    # the failed probe pauses it again with a doubled cool-down
    again = wait_until(lambda: _events(hooks, "modem.paused", name)[1:], what="paused again")[0]
    assert again["reason"].startswith("the probe after the cool-down failed: not registered")
    assert again["strikes"] == 2 and again["cooldown_s"] == pytest.approx(0.6)
    sim.set_network(True)
    resumed = wait_until(lambda: _events(hooks, "modem.resumed", name), what="resumed by the probe")[0]
    assert resumed["by"] == "probe"
    health = _health(server, name)
    assert health["paused"] is False and health["probation"] is True and health["strikes"] == 2
    # on probation its first send fails (a temporary error): paused again, cool-down capped
    sim.fail_sends(42)
    [retried] = _send(server, "on probation")
    third = wait_until(lambda: _events(hooks, "modem.paused", name)[2:], what="paused a third time")[0]
    assert third["reason"] == "the first send after the probe failed: +CMS ERROR 42"
    assert third["strikes"] == 3 and third["cooldown_s"] == pytest.approx(0.6)
    wait_until(lambda: _events(hooks, "modem.resumed", name)[1:], what="resumed by the probe again")
    assert wait_until(lambda: _message(server, retried)["status"] == "sent")  # its retry went through
    # its first send goes through: healthy again
    [ok] = _send(server, "after the probe")
    assert wait_until(lambda: _message(server, ok)["status"] == "sent")
    assert wait_until(lambda: not _health(server, name)["probation"])
    assert _health(server, name)["strikes"] == 0


def test_a_message_with_a_part_sent_waits_for_its_paused_modem(live_server_factory: Factory, hooks: HookReceiver,
                                                               sqlite_url: str, tmp_path: Path) -> None:
    server = _start(live_server_factory, hooks, sqlite_url)
    a, b = _names(server)
    sim_a, sim_b = server.simulators
    body = "x" * 200  # two parts: the second is shorter, so its AT+CMGS line differs
    first, second = encode_submit("+14155550100", body, concat_ref=1, concat_ref_bits=8,
                                  request_status_report=True)
    assert first.tpdu_length != second.tpdu_length
    # a takes it alone; its second part is refused with a barring error (38, temporary)
    with server.client() as c:
        assert c.post(f"/v1/modems/{b}/pause").status_code == 200
    sim_a.script_reply(f"AT+CMGS={second.tpdu_length}", "\r\n+CMS ERROR: 38\r\n", times=1)
    [mid] = _send(server, body)
    assert wait_until(lambda: _health(server, a)["paused"], what="a paused")
    message = wait_until(lambda: (m := _message(server, mid))["status"] == "queued" and m)
    assert message["modem"] == a and [p["state"] for p in message["part_details"]] == ["sent", "queued"]
    # b takes new work but not the pinned message
    with server.client() as c:
        assert c.post(f"/v1/modems/{b}/resume").status_code == 200
    [other] = _send(server, "for b")
    assert wait_until(lambda: _message(server, other)["status"] == "sent")
    assert _message(server, mid)["status"] == "queued" and all(r.total == 1 for r in sim_b.sent)
    # resumed from the command line, against the database: a sends the second part
    config = tmp_path / "cli.toml"
    config.write_text(f'[appliance]\ndatabase_url = "{sqlite_url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["modems", "resume", a, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"{a} resumed" in result.stdout
    done = wait_until(lambda: (m := _message(server, mid))["status"] == "sent" and m, what="sent")
    assert done["modem"] == a
    parts = [r for r in sim_a.sent if r.total == 2]
    assert [r.part for r in parts] == [1, 2] and len({r.ref for r in parts}) == 1
    resumed = wait_until(lambda: _events(hooks, "modem.resumed", a), what="the modem.resumed webhook")[0]
    assert resumed["by"] == "cli"
    assert [kind for kind, _, target in _audit(server, "modem.resume") if target == a] == ["cli"]
    # not paused any more: idempotent; an unknown name: one line, exit 1
    again = CliRunner().invoke(cli, ["modems", "resume", a, "--config", str(config)])
    assert again.exit_code == 0 and f"{a} is not paused" in again.stdout
    unknown = CliRunner().invoke(cli, ["modems", "resume", "nosuch", "--config", str(config)])
    assert unknown.exit_code == 1
    assert unknown.stderr.strip().splitlines() == [f"error: no modem named 'nosuch' (known modems: {a}, {b})"]
    long = CliRunner().invoke(cli, ["modems", "pause", a, "--reason", "x" * 201, "--config", str(config)])
    assert long.exit_code == 1 and long.stderr.strip() == "error: reason: at most 200 characters, not 201"
    paused = CliRunner().invoke(cli, ["modems", "pause", a, "--reason", " SIM swap ", "--config", str(config)])
    assert paused.exit_code == 0 and f"{a} paused" in paused.stdout
    assert wait_until(lambda: (h := _health(server, a))["paused"] and h)["reason"] == "SIM swap"


def test_a_pause_survives_a_restart(live_server_factory: Factory, hooks: HookReceiver, db_url: str) -> None:
    server = _start(live_server_factory, hooks, db_url, simulate=1)
    [name] = _names(server)
    server.simulators[0].fail_sends(21)  # short message transfer rejected
    [failed] = _send(server, "rejected")
    assert wait_until(lambda: _message(server, failed)["status"] == "failed")
    before = wait_until(lambda: (h := _health(server, name))["paused"] and h, what="paused")
    server.app.stop()
    again = _start(live_server_factory, hooks, db_url, simulate=1)
    assert _names(again) == [name]
    after = _health(again, name)
    assert after == before  # reason, since, next probe: all kept
    [waiting] = _send(again, "waits")
    with again.client() as c:
        assert any(f"modem {name} is paused" in r for r in c.get("/healthz").json()["reasons"])
        assert _message(again, waiting)["status"] == "queued"
        r = c.post(f"/v1/modems/{name}/resume")
        assert r.status_code == 200 and r.json()["changed"] is True
    assert wait_until(lambda: _message(again, waiting)["status"] == "sent")
    assert again.simulators[0].sent[0].text == "waits"


def test_nodes_sharing_postgresql_see_a_pause(live_server_factory: Factory, postgres_database: str) -> None:
    from tests.utils.db import empty_tables

    empty_tables(postgres_database)
    north, south = (live_server_factory(simulate=1, settings={
        "appliance": {"database_url": postgres_database}, "node": {"name": node},
        "health": {"sim": {"cooldown_s": 3600}},
    }) for node in ("north", "south"))
    # paused through north's API, south's own modem takes no more work
    with north.client() as c:
        r = c.post("/v1/modems/south-sim1/pause", json={"reason": "antenna work"})
        assert r.status_code == 200 and r.json()["changed"] is True
    assert wait_until(lambda: "south-sim1" in south.app.dispatcher.paused(), what="south sees the pause")
    with south.client() as c:
        assert _health(south, "south-sim1")["reason"] == "antenna work"
        assert any("modem south-sim1 is paused" in r for r in c.get("/healthz").json()["reasons"])
        ids = []
        for i in range(4):
            r = c.post("/v1/messages", json={"to": f"+1415555010{i}", "body": f"via north {i}"})
            ids.append(r.json()["messages"][0]["id"])
    for mid in ids:
        assert wait_until(lambda: (m := _message(south, mid))["status"] == "sent" and m)["modem"] == "north-sim1"
    assert south.simulators[0].sent == []
    # resumed through south's API: north's view says so
    with south.client() as c:
        assert c.post("/v1/modems/south-sim1/resume").json()["changed"] is True
    assert _health(north, "south-sim1")["paused"] is False
    assert wait_until(lambda: "south-sim1" not in south.app.dispatcher.paused())


def test_api_scope_404_and_the_web_buttons(live_server_factory: Factory, hooks: HookReceiver, sqlite_url: str,
                                            web_client: Callable[..., Any]) -> None:
    server = _start(live_server_factory, hooks, sqlite_url)
    a, b = _names(server)
    _, reader = server.app.keys.create("reader", ["read", "send"])
    with server.client(reader) as c:
        assert c.post(f"/v1/modems/{a}/resume").status_code == 403
        assert c.post(f"/v1/modems/{a}/pause").status_code == 403
        assert c.get("/v1/modems").json()["modems"][0]["health"]["paused"] is False
    with server.client() as c:
        for path in ("/v1/modems/nosuch/resume", "/v1/modems/nosuch/pause", f"/v1/modems/{'x' * 65}/resume"):
            r = c.post(path)
            assert r.status_code in (404, 422) and r.headers["content-type"].startswith("application/problem+json")
        assert c.post("/v1/modems/nosuch/resume").status_code == 404
        assert "nosuch" in c.post("/v1/modems/nosuch/resume").json()["detail"]
        r = c.post(f"/v1/modems/{a}/resume")
        assert r.status_code == 200 and r.json()["changed"] is False and r.json()["health"]["paused"] is False
        bad = c.post(f"/v1/modems/{a}/pause", json={"reason": "", "extra": 1})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    admin = web_client(server, role="admin")
    page = admin.get("/modems").text
    assert f'action="/modems/{a}/pause"' in page
    r = admin.post(f"/modems/{a}/pause")
    assert r.status_code == 303
    page = admin.get("/modems").text
    assert 'state-bad">paused<' in page and f"paused by web:{admin.username}" in page
    assert f'action="/modems/{a}/resume"' in page and "an admin must resume it" in page
    live = admin.get("/dashboard/live").text
    assert 'state-bad">paused<' in live and f"paused by web:{admin.username}" in live
    # no token, another site, a staff user: refused, nothing changed
    assert admin.http.post(f"/modems/{a}/resume", data={}).status_code == 403
    assert admin.http.post(f"/modems/{a}/resume", data={"csrf_token": admin.csrf},
                           headers={"Origin": "https://evil.example"}).status_code == 403
    staff = web_client(server, role="staff")
    assert staff.post(f"/modems/{a}/resume").status_code == 403
    assert admin.post("/modems/nosuch/resume").status_code == 404
    assert _health(server, a)["paused"] is True
    r = admin.post(f"/modems/{a}/resume")
    assert r.status_code == 303
    assert _health(server, a)["paused"] is False and _health(server, a)["resumed_by"] == f"web:{admin.username}"
    assert _audit(server, "modem.") == [("user", admin.username, a), ("user", admin.username, a)]
    [mid] = _send(server, "after the button")
    assert wait_until(lambda: _message(server, mid)["status"] == "sent")


# ---------------------------------------------------------------------- the window and the settings


def _refused(code: int) -> SendRejected:
    return SendRejected(f"+CMS ERROR: {code}", code=code, kind="cms", temporary=True)


def test_the_window_share_ignored_codes_and_probation() -> None:
    window = SendWindow(SimHealthSection(window=4, max_failed_share=0.5, failures_in_row=3))
    assert window.record(_refused(42)) is None and window.record(None) is None
    assert window.record(_refused(42)) is None
    assert window.record(ModemDisconnected("unplugged")) is None  # offline is not the SIM's fault
    assert window.record(_refused(1)) is None  # unassigned number: the recipient's, not counted
    trip = window.record(SendOutcomeUnknown("no +CMGS"))  # 3 of the last 4 failed
    assert trip is not None and trip.reason.startswith("3 of the last 4 sends failed")
    assert (trip.failed, trip.of, trip.code) == (3, 4, None)
    window.reset(probation=True)
    trip = window.record(_refused(500))
    assert trip is not None and trip.reason == "the first send after the probe failed: +CMS ERROR 500"
    window.reset(probation=True)
    assert window.record(None) is None and window.probation is True  # the dispatcher ends it


def test_settings_name_the_wrong_key(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text("[health.sim]\ncooldown_s = 600\ncooldown_max_s = 60\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"health.sim.*cooldown_max_s must be at least cooldown_s"):
        load_settings(config)
    config.write_text("[health.sim]\nbarring_cms = [21, \"x\"]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"health.sim.barring_cms.1"):
        load_settings(config)
    config.write_text("[health.sim]\nfailures_in_row = 3\nprobe = false\n", encoding="utf-8")
    sim = load_settings(config).health.sim
    assert sim.failures_in_row == 3 and sim.probe is False and 21 in sim.barring_cms


def test_pauses_and_resumes_are_mailed_to_alerts_to(live_server_factory: Factory, sqlite_url: str) -> None:
    from tests.utils.email import Sink, email_settings

    sink = Sink().start()
    try:
        server = live_server_factory(simulate=1, settings={
            "appliance": {"database_url": sqlite_url},
            **email_settings(alerts_to=["it@school.lan", "boss@school.lan"],
                             relay={"host": "127.0.0.1", "port": sink.port, "starttls": False}),
        })
        [name] = _names(server)
        with server.client() as c:
            assert c.post(f"/v1/modems/{name}/pause", json={"reason": "SIM swap"}).status_code == 200
            paused = wait_until(lambda: len(sink.messages()) >= 2 and sink.messages(), what="two alert mails")
            assert sorted(r for rcpts, _ in paused for r in rcpts) == ["boss@school.lan", "it@school.lan"]
            mail = paused[0][1]
            assert mail["Subject"] == f"SMS appliance: modem {name} paused"
            assert "SIM swap" in mail.get_content() and f"appliance modems resume {name}" in mail.get_content()
            assert c.post(f"/v1/modems/{name}/resume").status_code == 200
        resumed = wait_until(lambda: [m for _, m in sink.messages() if "resumed" in m["Subject"]], what="resumed")
        assert "admin:test-admin" in resumed[0].get_content()
    finally:
        sink.stop()


def test_the_refusal_that_pauses_a_sim_costs_the_message_no_attempt(live_server_factory: Factory,
                                                                      hooks: HookReceiver, sqlite_url: str) -> None:
    """Five temporary refusals in a row: the fifth pauses the SIM. Before, it was also the
    message's fifth and last attempt (failed); now the SIM takes the blame and the message
    goes back untouched, and is sent once the probe resumes the SIM."""
    server = _start(live_server_factory, hooks, sqlite_url, simulate=1, cooldown_s=0.3, cooldown_max_s=0.6)
    [name] = _names(server)
    [sim] = server.simulators
    sim.fail_sends(42, 5)  # congestion, five times
    [mid] = _send(server, "through a bad patch")
    paused = wait_until(lambda: _events(hooks, "modem.paused", name), what="paused")[0]
    assert paused["failures_in_row"] == 5
    assert wait_until(lambda: _message(server, mid)["status"] == "sent", what="sent after the probe")
    assert _message(server, mid)["attempts"] == 4
