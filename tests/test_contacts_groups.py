"""Groups: static members plus filters on fields; audiences built from them; the routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.contacts import ContactBook, FilterError, GroupNotFound, parse_filter
from appliance.queue import Queue


@pytest.fixture
def book(tmp_path: Path) -> ContactBook:
    b = ContactBook(Queue(tmp_path / "q.db").engine)
    b.import_csv(
        "number,first_name,last_name,class,school\n"
        "+14155550101,Ann,Lee,5B,North\n"
        "+14155550102,Bob,Ray,5b,South\n"
        "+14155550103,Cid,Moe,5A,North\n"
        "+14155550104,Dee,,,North\n"
    )
    return b


def test_filter_syntax() -> None:
    conds = parse_filter('class = "5B" and school != \'South side\' AND name = Ann')
    assert [(c.field, c.op, c.value) for c in conds] == [
        ("class", "=", "5B"), ("school", "!=", "South side"), ("name", "=", "Ann")]
    for bad, why in [("class", "ends too early"), ("class == 5B", "value"), ("class = 5B or x = 1", "'and'"),
                     ("1class = 5", "field name"), ("", "empty")]:
        with pytest.raises(FilterError, match=why):
            parse_filter(bad)


def test_filter_members_ignore_case_and_missing_fields_are_empty(book: ContactBook) -> None:
    g = book.create_group("5B", filter='class = "5B"')
    assert g.members == 2 and g.static_members == 0
    numbers = [r.number for r in book.recipients(groups=["5B"])]
    assert numbers == ["+14155550101", "+14155550102"]
    north_not_5a = book.create_group("n", filter="school = north and class != 5A")
    assert [r.number for r in book.recipients(groups=[north_not_5a.name])] == ["+14155550101", "+14155550104"]
    assert book.get_group("n").members == 2


def test_static_plus_filter_and_audience_fields(book: ContactBook) -> None:
    book.create_group("mixed", filter="class = 5A")
    added, missing = book.add_members("mixed", ["+14155550104", "+12025550199"])
    assert (added, missing) == (1, ["+12025550199"])
    got = book.recipients(groups=["mixed"], numbers=["+14155550103", "+12025550199"])
    assert [r.number for r in got] == ["+14155550103", "+14155550104", "+12025550199"]  # each once
    assert got[0].fields["name"] == "Cid Moe" and got[0].fields["school"] == "North"
    assert got[2].fields == {"number": "+12025550199"}  # not a contact: only its number
    assert book.remove_members("mixed", ["+14155550104"]) == 1
    assert book.get_group("mixed").members == 1
    book.update_group("mixed", filter="")
    assert book.get_group("mixed").members == 0
    book.delete_group("mixed")
    with pytest.raises(GroupNotFound):
        book.get_group("mixed")
    assert book.count() == 4  # contacts stay


def test_routes(live_server: Any, tmp_path: Path) -> None:
    c = live_server.client()
    r = c.post("/v1/contacts", json={"number": "(415) 555-0101", "name": "Ann Lee", "fields": {"class": "5B"}})
    assert r.status_code == 201, r.text
    ann = r.json()
    assert (ann["number"], ann["first_name"], ann["last_name"]) == ("+14155550101", "Ann", "Lee")
    assert c.post("/v1/contacts", json={"number": "+14155550101"}).status_code == 409
    bad = c.post("/v1/contacts", json={"number": "12"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "number"
    r = c.patch(f"/v1/contacts/{ann['id']}", json={"fields": {"bus": 7}, "groups": ["riders"]})
    assert r.json()["fields"] == {"bus": "7", "class": "5B"} and r.json()["groups"] == ["riders"]
    r = c.post("/v1/groups", json={"name": "5B", "filter": "class = 5B"})
    assert r.status_code == 201 and r.json()["members"] == 1
    assert c.post("/v1/groups", json={"name": "x", "filter": "class =="}).status_code == 422
    assert [g["name"] for g in c.get("/v1/groups").json()["items"]] == ["5B", "riders"]
    assert c.get("/v1/groups/5B/members").json()["items"][0]["number"] == "+14155550101"
    assert c.get("/v1/contacts", params={"group": "riders"}).json()["items"][0]["id"] == ann["id"]
    assert c.get("/v1/contacts", params={"search": "Lee"}).json()["items"][0]["id"] == ann["id"]
    export = c.get("/v1/contacts/export")
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[1] == "+14155550101,Ann,Lee,7,5B,riders"
    assert c.delete(f"/v1/contacts/{ann['id']}").status_code == 204
    assert c.get(f"/v1/contacts/{ann['id']}").status_code == 404
    (tmp_path / "imports").mkdir()  # [contacts] import_dir: "imports" beside the database
    big = tmp_path / "imports" / "big.csv"
    big.write_text("tel;nom\n+14155550120;Zoe\n+14155550121;Max\n")
    r = c.post("/v1/contacts/import", json={"path": str(big), "map": {"nom": "first_name"}, "group": "path"})
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    assert c.get("/v1/groups/path").json()["members"] == 2
    r = c.post("/v1/contacts/import", json={"path": "big.csv", "dry_run": True})  # a name in the directory
    assert r.status_code == 200 and r.json()["merged"] == 2, r.text
    outside = tmp_path / "outside.csv"
    outside.write_text("number\n+14155550122\n")
    assert c.post("/v1/contacts/import", json={"path": str(outside)}).json()["errors"][0]["field"] == "path"
    sender = live_server.client(live_server.app.keys.create("s", ["send"])[1])
    assert sender.post("/v1/contacts/import", json={"path": str(big)}).status_code == 403  # path needs admin
    reader = live_server.client(live_server.app.keys.create("r", ["read"])[1])
    assert reader.post("/v1/groups", json={"name": "y"}).status_code == 403
    assert reader.post("/v1/contacts/import", content="number\n+14155550109\n",
                       headers={"Content-Type": "text/csv"}).status_code == 403
