"""Broadcasts end to end: the live server, simulated modems on real ptys, parts counted at
the simulators."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.utils.wait import wait_until

NO_QUIET = {"broadcasts": {"quiet_hours_start": "", "quiet_hours_end": ""}}


def _state(client: Any, bid: int) -> dict[str, Any]:
    r = client.get(f"/v1/broadcasts/{bid}")
    assert r.status_code == 200, r.text
    return r.json()


def _received(live: Any) -> list[Any]:
    return [rec for sim in live.simulators for rec in sim.sent]


def _texts(records: list[Any]) -> dict[str, str]:
    """Recipient → reassembled text, from what the simulators logged (parts in order)."""
    by_msg: dict[tuple[str, str, int | None], list[Any]] = {}
    for rec in records:
        by_msg.setdefault((rec.modem, rec.to, rec.ref), []).append(rec)
    return {key[1]: "".join(r.text for r in sorted(parts, key=lambda r: r.part)) for key, parts in by_msg.items()}


def test_preview_figures_equal_what_the_simulators_received(live_server_factory: Callable[..., Any]) -> None:
    live = live_server_factory(simulate=2, settings=NO_QUIET)
    c = live.client()
    rows = ["number,first_name,class,note"]
    for i in range(24):
        first = ["Ann", "Łukasz", "Bob", ""][i % 4]  # Ł forces UCS-2; "" is filled by the default
        note = "x" * (150 if i % 5 == 0 else 3)  # some texts need two parts
        rows.append(f"+1415555{1000 + i:04d},{first},5B,{note}")
    rows.append("+1415555,Bad,5B,x")  # invalid: reported, skipped
    r = c.post("/v1/contacts/import", params={"group": "parents"}, content="\n".join(rows) + "\n",
               headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["invalid"]) == (24, 1)
    assert c.post("/v1/opt-outs", json={"number": "+14155551003"}).status_code == 201

    body = {"template": "Hi {first_name|there}, {note}", "audience": {"groups": ["parents"]}, "kind": "marketing"}
    preview = c.post("/v1/broadcasts/preview", json=body).json()
    assert (preview["recipients"], preview["opted_out"], preview["sendable"]) == (24, 1, 23)
    assert preview["footer"] == "Reply STOP to opt out" and preview["missing"] == {}
    assert preview["encodings"]["ucs2"] > 0 and preview["encodings"]["gsm7"] > 0
    assert preview["max_parts"] >= 2 and "with 2 modems" in preview["estimate"]
    assert preview["samples"][0]["body"].endswith("\nReply STOP to opt out")

    created = c.post("/v1/broadcasts", json={**body, "start": True})
    assert created.status_code == 201, created.text
    bid = created.json()["id"]
    final = wait_until(lambda: (s := _state(c, bid))["status"] == "done" and s, timeout=30,
                       what='(s := _state(c, bid))["status"] == "done" and s')
    stats = final["stats"]
    assert (stats["sent"] + stats["delivered"], stats["suppressed"], stats["failed"]) == (23, 1, 0)

    received = _received(live)
    assert len(received) == preview["parts"] == stats["parts_sent"]  # parts counted at the simulators
    texts = _texts(received)
    assert "+14155551003" not in texts  # the opted-out parent got nothing
    assert len(texts) == 23
    assert texts["+14155551000"].startswith("Hi Ann, xxx") and texts["+14155551000"].endswith("Reply STOP to opt out")
    assert texts["+14155551007"].startswith("Hi there, ")  # first_name empty → default
    assert texts["+14155551001"].startswith("Hi Łukasz")
    hours = final["stats"]["per_hour"]
    assert sum(h["sent"] for h in hours) == 23


def test_missing_fields_are_reported_and_refuse_the_start(live_server: Any) -> None:
    c = live_server.client()
    c.post("/v1/contacts", json={"number": "+14155552001", "first_name": "Ann", "fields": {"time": "10:30"}})
    c.post("/v1/contacts", json={"number": "+14155552002", "first_name": "Bob"})
    r = c.post("/v1/groups", json={"name": "clinic", "filter": "first_name != nobody"})
    assert r.status_code == 201 and r.json()["members"] == 2
    body = {"template": "Hi {first_name}, your slot is {time} {room}", "audience": {"groups": ["clinic"]}}
    preview = c.post("/v1/broadcasts/preview", json=body).json()
    assert preview["missing"] == {"time": 1, "room": 2}
    assert preview["missing_examples"][0] == {"number": "+14155552001", "missing": ["room"]}
    assert preview["unknown_fields"] == ["room"]
    bid = c.post("/v1/broadcasts", json=body).json()["id"]
    refused = c.post(f"/v1/broadcasts/{bid}/start")
    assert refused.status_code == 422 and "{time} for 1" in refused.json()["detail"]
    assert _state(c, bid)["status"] == "draft"
    started = c.post(f"/v1/broadcasts/{bid}/start", json={"allow_missing": True})
    assert started.status_code == 200, started.text
    wait_until(lambda: _state(c, bid)["status"] == "done", what='_state(c, bid)["status"] == "done"')
    texts = _texts(_received(live_server))
    assert texts == {"+14155552001": "Hi Ann, your slot is 10:30 ", "+14155552002": "Hi Bob, your slot is  "}
    assert c.post(f"/v1/broadcasts/{bid}/start").status_code == 409  # started once only
    # Replies from the audience are counted (a stranger's message is not).
    live_server.simulators[0].deliver_sms("+14155552001", "See you then")
    live_server.simulators[1].deliver_sms("+12025550999", "Who is this?")
    wait_until(lambda: c.get("/v1/inbound").json()["items"][1:], what='c.get("/v1/inbound").json()["items"][1:]')
    assert _state(c, bid)["stats"]["replies"] == 1


def test_pause_resume_cancel_mid_run(live_server_factory: Callable[..., Any]) -> None:
    live = live_server_factory(simulate=1, settings=NO_QUIET, simulator_kwargs={"latency_s": 0.02})
    c = live.client()
    numbers = [f"+1202555{3000 + i:04d}" for i in range(200)]
    r = c.post("/v1/broadcasts", json={"template": "Drill {number}", "audience": {"numbers": numbers},
                                       "start": True})
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    wait_until(lambda: _state(c, bid)["stats"]["sent"] >= 10, what='_state(c, bid)["stats"]["sent"] >= 10')
    paused = c.post(f"/v1/broadcasts/{bid}/pause").json()
    assert paused["status"] == "paused"
    wait_until(lambda: _state(c, bid)["stats"]["sending"] == 0, what='_state(c, bid)["stats"]["sending"] == 0')
    held_at = _state(c, bid)["stats"]
    time.sleep(0.5)
    still = _state(c, bid)
    assert still["status"] == "paused" and still["stats"]["sent"] == held_at["sent"] < 200
    assert still["stats"]["queued"] == 200 - held_at["sent"]  # paused messages stay queued to the API
    assert c.get("/v1/messages", params={"status": "queued", "limit": 1}).json()["items"]
    assert len(_received(live)) == held_at["sent"]

    assert c.post(f"/v1/broadcasts/{bid}/resume").json()["status"] == "running"
    wait_until(lambda: _state(c, bid)["stats"]["sent"] >= held_at["sent"] + 10,
               what='_state(c, bid)["stats"]["sent"] >= held_at["sen…')
    cancelled = c.post(f"/v1/broadcasts/{bid}/cancel").json()
    assert cancelled["status"] == "cancelled"
    wait_until(lambda: _state(c, bid)["stats"]["sending"] == 0, what='_state(c, bid)["stats"]["sending"] == 0')
    time.sleep(0.2)
    s = _state(c, bid)["stats"]
    assert s["cancelled"] > 0 and s["queued"] == 0
    assert s["sent"] + s["delivered"] + s["cancelled"] == 200
    assert len(_received(live)) == s["sent"] + s["delivered"]  # nothing cancelled left the modem
    assert c.post(f"/v1/broadcasts/{bid}/resume").status_code == 409


def test_quiet_hours_hold_marketing_but_not_transactional(live_server_factory: Callable[..., Any]) -> None:
    zone = "Asia/Kolkata"  # a half-hour offset: the window is computed in the appliance's timezone
    local = datetime.now(ZoneInfo(zone))
    window = {"timezone": zone, "quiet_hours_start": (local - timedelta(hours=1)).strftime("%H:%M"),
              "quiet_hours_end": (local + timedelta(hours=1)).strftime("%H:%M")}
    live = live_server_factory(simulate=2, settings={"broadcasts": window})
    c = live.client()
    promo = [f"+1415555{4000 + i:04d}" for i in range(5)]
    notice = [f"+1415555{4100 + i:04d}" for i in range(5)]
    preview = c.post("/v1/broadcasts/preview", json={"template": "Sale!", "audience": {"numbers": promo},
                                                      "kind": "marketing"}).json()
    assert preview["quiet_hours"].endswith(zone) and preview["starts_at"] is not None
    assert datetime.fromisoformat(preview["starts_at"]) > datetime.now(ZoneInfo(zone)) + timedelta(minutes=50)
    m = c.post("/v1/broadcasts", json={"template": "Sale!", "audience": {"numbers": promo}, "kind": "marketing",
                                       "start": True}).json()
    t = c.post("/v1/broadcasts", json={"template": "Closed", "audience": {"numbers": notice},
                                       "start": True}).json()
    wait_until(lambda: _state(c, t["id"])["status"] == "done", what='_state(c, t["id"])["status"] == "done"')
    time.sleep(0.3)
    held = _state(c, m["id"])
    assert held["status"] == "running" and held["waiting_for_quiet_hours"] is True
    assert held["stats"]["queued"] == 5  # waiting, not dropped
    assert set(_texts(_received(live))) == set(notice)
    # The window ends (here: the setting changes): the dispatcher takes them.
    live.app.queue.quiet_hours = None
    live.app.dispatcher.kick()
    wait_until(lambda: _state(c, m["id"])["status"] == "done", what='_state(c, m["id"])["status"] == "done"')
    assert set(_texts(_received(live))) == set(notice) | set(promo)


def test_ten_thousand_recipients_end_to_end(live_server_factory: Callable[..., Any]) -> None:
    # ~27 s alone on 2 cores (~35 s inside the full suite): the send path (pty round trips,
    # fsynced part transitions) is the limit, not accepting the broadcast (~1.5 s).
    live = live_server_factory(simulate=2, settings=NO_QUIET)
    c = live.client()
    csv_text = "phone,first_name\n" + "".join(f"+1415555{i:04d},P{i}\n" for i in range(10_000))
    started = time.monotonic()
    r = c.post("/v1/contacts/import", params={"group": "all"}, content=csv_text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["created"] == 10_000, r.text[:300]
    r = c.post("/v1/broadcasts", json={"template": "Hello {first_name}", "audience": {"groups": ["all"]},
                                       "start": True})
    assert r.status_code == 201, r.text[:300]
    bid = r.json()["id"]
    accepted = time.monotonic() - started
    final = wait_until(lambda: (s := _state(c, bid))["status"] == "done" and s, timeout=120, interval=0.5,
                       what='(s := _state(c, bid))["status"] == "done" and s')
    elapsed = time.monotonic() - started
    assert final["stats"]["sent"] + final["stats"]["delivered"] == 10_000
    received = _received(live)
    assert len(received) == 10_000
    assert Counter(rec.to for rec in received).most_common(1)[0][1] == 1  # each once
    print(f"10k broadcast: accepted in {accepted:.1f} s, done in {elapsed:.1f} s")
