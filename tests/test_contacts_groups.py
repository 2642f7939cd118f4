"""Groups: static members plus filters on fields; audiences built from them (on SQLite
and PostgreSQL); the routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.contacts import ContactBook, ContactExists, FilterError, GroupNotFound, parse_filter
from tests.utils.people import migrated_engine, race


@pytest.fixture
def book(db_url: str) -> Iterator[ContactBook]:
    with migrated_engine(db_url) as engine:
        yield _filled(ContactBook(engine))


def _filled(b: ContactBook) -> ContactBook:
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


def test_a_lower_case_filter_value_matches_an_upper_case_field(book: ContactBook) -> None:
    g = book.create_group("fives", filter='class = "5b"')
    assert g.members == 2
    assert [c.number for c in book.list(group="fives").items] == ["+14155550101", "+14155550102"]
    assert [r.number for r in book.recipients(groups=["fives"])] == ["+14155550101", "+14155550102"]
    book.create_group("ann", filter="name = 'ANN LEE' and SCHOOL != south")  # a missing field is empty
    assert [r.number for r in book.recipients(groups=["ann"])] == ["+14155550101"]
    book.create_group("quote", filter="""class = "it's" """)
    assert book.get_group("quote").members == 0


def test_group_lookups_by_odd_ids_and_names_are_not_found(book: ContactBook) -> None:
    for ref in ["99999999999999999999999", "0", "-1", "١٢"]:
        with pytest.raises(GroupNotFound):
            book.get_group(ref)
    with pytest.raises(GroupNotFound):
        book.list(group="9" * 30)
    g = book.create_group("12345678901234567890123")
    assert book.get_group(g.name).id == g.id and book.get_group(str(g.id)).name == g.name


def test_renaming_a_group_to_a_taken_name_is_a_conflict(book: ContactBook) -> None:
    book.create_group("a")
    book.create_group("b")
    with pytest.raises(ContactExists, match="exists already"):
        book.update_group("b", name="a")
    assert book.update_group("b", name="c", description="see").description == "see"


def test_two_updates_making_the_same_new_group_at_once_share_it(db_url: str) -> None:
    with migrated_engine(db_url) as one, migrated_engine(db_url) as two:
        books = [_filled(ContactBook(one)), ContactBook(two)]
        ids = [books[0].get_by_number(f"+1415555010{i}").id for i in (1, 2)]
        for round_ in range(5):
            name = f"new {round_}"
            got = race(*[lambda b=b, cid=cid: b.update(cid, groups=[name]) for b, cid in zip(books, ids, strict=True)])
            assert [c.groups for c in got] == [(name,), (name,)], got
            assert books[1].get_group(name).static_members == 2


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
