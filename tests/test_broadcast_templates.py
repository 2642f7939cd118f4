"""Templates (placeholders, defaults, escapes), previews of missing fields, CSV audiences,
and the duration estimate."""

from __future__ import annotations


import pytest

from appliance.broadcasts import (
    Audience,
    BroadcastService,
    BroadcastSpec,
    Template,
    TemplateError,
    humanize,
    send_duration,
)
from appliance.contacts import ContactBook
from appliance.queue import InvalidRequest, InvalidState, Queue, RateLimits
from appliance.queue.quiet import QuietHours, parse_clock


def test_placeholders_defaults_and_escapes() -> None:
    t = Template("Hi {first_name|there}, {{not a field}} at {time}; {first_name}")
    assert t.fields == ("first_name", "time") and t.required == ("time", "first_name")
    assert t.render({"first_name": "Ann", "time": "10:30"}) == ("Hi Ann, {not a field} at 10:30; Ann", ())
    assert t.render({"first_name": "", "time": "9"}) == ("Hi there, {not a field} at 9; ", ("first_name",))
    assert t.render({}) == ("Hi there, {not a field} at ; ", ("time", "first_name"))
    assert Template("{x|}!").render({}) == ("!", ())  # an empty default is a default
    for bad in ["Hi {first name}", "Hi {", "Hi }", "{a|b} {}", "  "]:
        with pytest.raises(TemplateError):
            Template(bad)


@pytest.fixture
def service(db_url: str) -> BroadcastService:
    queue = Queue(db_url, max_parts=3)
    book = ContactBook(queue.engine)
    book.import_csv("number,first_name,appointment\n+14155550101,Ann,Tue 10:30\n+14155550102,,Wed 9:00\n"
                    "+14155550103,Cid,\n", group="patients")
    return BroadcastService(queue, book, limits=lambda: [RateLimits(), RateLimits()])


def test_preview_reports_missing_fields_and_start_refuses_them(service: BroadcastService) -> None:
    spec = BroadcastSpec("Dear {first_name|patient}, see you {appointment}.", Audience(groups=("patients",)))
    p = service.preview(spec)
    assert p.missing == {"appointment": 1} and p.missing_examples == [{"number": "+14155550103",
                                                                         "missing": ["appointment"]}]
    assert [s.body for s in p.samples] == ["Dear Ann, see you Tue 10:30.", "Dear patient, see you Wed 9:00.",
                                           "Dear Cid, see you ."]
    draft = service.create(spec)
    with pytest.raises(InvalidRequest, match=r"\{appointment\} for 1"):
        service.start(draft.id)
    assert service.queue.stats()["queued"] == 0  # nothing half-started
    view = service.start(draft.id, allow_missing=True)
    assert view.status == "running" and view.stats is not None and view.stats.by_status["queued"] == 3
    with pytest.raises(InvalidState):
        service.start(draft.id, allow_missing=True)


def test_csv_audience_invalid_rows_duplicates_and_too_long(service: BroadcastService) -> None:
    csv_text = "phone,first_name,slot\n+14155550201,Eve,8:00\n+1555,Bad,9\n+14155550201,Eve again,9\n"
    p = service.preview(BroadcastSpec("{first_name}: {slot}", Audience(csv=csv_text, numbers=("+14155550202",))))
    assert (p.recipients, p.invalid, p.duplicates) == (2, 1, 1)
    assert p.invalid_examples[0]["row"] == 3
    assert p.missing == {"first_name": 1, "slot": 1}  # the bare number has neither
    long = BroadcastSpec("{first_name|x} " + "x" * 500, Audience(groups=("patients",)))
    p = service.preview(long)
    assert p.too_long == 3 and p.max_parts == 4 and p.parts_limit == 3
    with pytest.raises(InvalidRequest, match="more than 3 parts"):
        service.start(service.create(long).id)


def test_a_scheduled_broadcast_waits_for_send_at(service: BroadcastService) -> None:
    later = service.clock() + 3600
    spec = BroadcastSpec("Reminder {first_name|}", Audience(groups=("patients",)), send_at=later)
    view = service.start(service.create(spec).id)
    assert view.status == "scheduled" and view.send_at is not None
    assert service.queue.claim("m1", max_parts=10) is None
    assert service.queue.next_wakeup("m1") == pytest.approx(later)
    paused = service.pause(view.id)
    assert paused.status == "paused" and service.queue.next_wakeup("m1") is None
    assert service.resume(view.id).status == "scheduled"
    assert service.cancel(view.id).stats.by_status["cancelled"] == 3  # type: ignore[union-attr]


def test_marketing_footer_counts_in_the_parts(service: BroadcastService) -> None:
    text = "x" * 150  # one part alone; two with the footer
    plain = service.preview(BroadcastSpec(text, Audience(groups=("patients",))))
    promo = service.preview(BroadcastSpec(text, Audience(groups=("patients",)), kind="marketing"))
    assert (plain.parts, promo.parts) == (3, 6)
    assert promo.samples[0].body == text + "\nReply STOP to opt out"


def test_duration_estimate_under_the_caps() -> None:
    sim = RateLimits(min_interval_s=2, per_minute=6, per_hour=200, per_day=1000)
    # 1,200 parents, 2 modems: 600 parts each, 200 an hour → bursts at 0 h, 1 h, 2 h.
    assert send_duration(1200, [sim, sim]) == 7200 and humanize(7200) == "2 h 0 min"
    assert send_duration(12, [sim]) == 60  # 6 a minute: the 7th waits a minute
    assert send_duration(5, [sim]) == 8  # min interval only
    assert humanize(12000) == "3 h 20 min" and humanize(45) == "45 s" and humanize(90000) == "1 d 1 h"
    assert send_duration(10, []) == float("inf") and humanize(float("inf")) == "never (no modem)"
    fast = RateLimits(min_interval_s=0, per_minute=60, per_hour=2000, per_day=20000)
    assert send_duration(1200, [fast, sim]) < send_duration(1200, [sim, sim])  # shares follow the rates


def test_quiet_hours_stretch_a_marketing_estimate(db_url: str) -> None:
    queue = Queue(db_url, clock=lambda: 1_800_000_000.0)  # 2027-01-15 08:00 UTC
    queue.quiet_hours = QuietHours(parse_clock("07:00"), parse_clock("09:00"), "UTC")
    svc = BroadcastService(queue, ContactBook(queue.engine),
                           limits=lambda: [RateLimits(min_interval_s=0, per_minute=100, per_hour=100)])
    numbers = tuple(f"+1415555{i:04d}" for i in range(150))
    p = svc.preview(BroadcastSpec("hi", Audience(numbers=numbers), kind="marketing"))
    assert p.starts_at is not None and p.starts_at.hour == 9  # waits for the window's end
    assert p.estimate_s == 3600 + 3600  # one hour of quiet, then 100 an hour
    t = svc.preview(BroadcastSpec("hi", Audience(numbers=numbers)))
    assert t.estimate_s == 3600 and t.quiet_hours is None


def test_preview_and_start_use_the_national_tables_configured(service: BroadcastService) -> None:
    service.queue.national_languages = ("hindi",)
    # Two UCS-2 parts; one with the Hindi tables (they are used only when they save parts).
    text = "नमस्ते {first_name|अभिभावक}, कल स्कूल बंद रहेगा। कृपया अपने बच्चे को घर पर रखें। धन्यवाद, कक्षा अध्यापक"
    p = service.preview(BroadcastSpec(text, Audience(groups=("patients",))))
    assert p.encodings == {"gsm7": 3}  # UCS-2 without the Hindi tables
    draft = service.create(BroadcastSpec(text, Audience(groups=("patients",))))
    service.start(draft.id, allow_missing=True)
    sent = service.queue.list(limit=10).items
    assert {m.encoding for m in sent} == {"gsm7"}
