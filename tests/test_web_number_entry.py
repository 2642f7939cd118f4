"""Numbers typed on the staff pages as people write them: one a line, or separated by
commas, semicolons or tabs (a column pasted from a spreadsheet), with the spaces, dashes
and brackets of each number kept inside it. Over HTTP against a live appliance (httpx)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from appliance.numbers import InvalidNumber, one_number, read_numbers, split_numbers

AS_WRITTEN = ["+1 415 641 0011", "(415) 641-0012", "082 555 1234"]


@pytest.mark.parametrize("separator", ["\n", "\r\n", ", ", ";", "\t", " ,\n", ";\t"])
def test_split_keeps_each_number_whole(separator: str) -> None:
    assert split_numbers(separator.join(AS_WRITTEN) + separator) == AS_WRITTEN


def test_read_numbers_in_the_appliance_region() -> None:
    us = read_numbers("\n".join(AS_WRITTEN), "US")
    assert us.numbers == ["+14156410011", "+14156410012"]
    assert [entry for entry, _ in us.unreadable] == ["082 555 1234"]
    za = read_numbers("+1 415 641 0011\n082 555 1234\n082.555.1234", "ZA")
    assert za.numbers == ["+14156410011", "+27825551234"]  # each once
    assert one_number(" (415) 641-0012, ", "US") == "+14156410012"
    with pytest.raises(InvalidNumber, match="one number"):
        one_number("+1 415 641 0011, (415) 641-0012", "US")


def _preview(staff: Any, numbers: str) -> Any:
    return staff.post("/compose/preview", {"numbers": numbers, "text": "Trip on Friday", "kind": "transactional",
                                           "when": "now", "name": "Trip"})


def test_compose_reads_numbers_as_written_and_names_each_one_it_cannot(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    for separator in ("\n", ", ", "; ", "\t", "\r\n"):
        preview = _preview(staff, separator.join(AS_WRITTEN))
        assert preview.status_code == 200, preview.text
        assert 'id="pv-sendable">2<' in preview.text and 'id="pv-invalid" class="bad">1<' in preview.text
        unreadable = re.search(r'id="pv-unreadable".*?</div>', preview.text, re.S)
        assert unreadable is not None and "<code>082 555 1234</code>" in unreadable.group(0)
        assert "+1 415" not in unreadable.group(0) and "(415)" not in unreadable.group(0)
    many = "\n".join(AS_WRITTEN + ["12", "not a number", "+44 20", "415-641-0013"])
    preview = _preview(staff, many)
    unreadable = re.search(r'id="pv-unreadable".*?</div>', preview.text, re.S)
    assert unreadable is not None
    named = re.findall(r"<code>([^<]*)</code>", unreadable.group(0))
    assert named == ["082 555 1234", "12", "not a number", "+44 20"]
    form_id = re.search(r'name="form_id" value="([^"]+)"', preview.text).group(1)  # type: ignore[union-attr]
    sent = staff.post("/compose/send", {"numbers": many, "text": "Trip on Friday", "kind": "transactional",
                                        "when": "now", "name": "Trip", "form_id": form_id})
    assert sent.status_code == 303, sent.text
    deadline = time.monotonic() + 30
    while (progress := staff.get(sent.headers["location"] + "/progress").json())["status"] != "done":
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    assert progress["total"] == 3
    received = sorted(r.to for s in live_server.simulators for r in s.sent)
    assert received == ["+14156410011", "+14156410012", "+14156410013"]


def test_the_region_reads_local_numbers(live_server_factory: Any, web_client: Any) -> None:
    server = live_server_factory(simulate=1, settings={"appliance": {"default_region": "ZA"}})
    staff = web_client(server)
    preview = _preview(staff, "082 555 1234\n+1 415 641 0011")
    assert preview.status_code == 200 and 'id="pv-sendable">2<' in preview.text and "+27825551234" in preview.text


def test_groups_opt_outs_and_contacts_read_numbers_the_same_way(live_server: Any, web_client: Any) -> None:
    staff = web_client(live_server)
    made = staff.post("/groups", {"name": "Trip", "numbers": "+1 415 641 0011\t(415) 641-0012\n"})
    assert made.status_code == 303, made.text
    group = live_server.client().get("/v1/groups/Trip").json()
    assert group["members"] == 2
    refused = staff.post("/groups", {"name": "Other", "numbers": "\n".join(AS_WRITTEN)})
    error = re.search(r'id="f-numbers-error">([^<]*)<', refused.text)
    assert refused.status_code == 422 and error is not None
    assert "082 555 1234" in error[1] and "+1 415" not in error[1] and "(415)" not in error[1]

    out = staff.post("/opt-outs", {"number": "+1 415 641 0011"})
    assert out.status_code == 303 and "%2B14156410011" in out.headers["location"]
    assert live_server.app.queue.is_opted_out("+14156410011")
    assert staff.post("/opt-outs", {"number": "(415) 641-0012,"}).status_code == 303  # a pasted trailing comma
    two = staff.post("/opt-outs", {"number": "+1 415 641 0013; (415) 641-0014"})
    assert two.status_code == 422 and "one number" in two.text
    assert not live_server.app.queue.is_opted_out("+14156410013")

    added = staff.post("/contacts", {"number": "(415) 641-0015", "first_name": "Ana"})
    assert added.status_code == 303, added.text
    assert "+14156410015" in staff.get("/contacts?q=Ana").text
    two = staff.post("/contacts", {"number": "(415) 641-0016, (415) 641-0017", "first_name": "Ben"})
    assert two.status_code == 422 and "one number" in two.text
