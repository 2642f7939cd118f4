"""Contacts: CSV import with its per-row report, all-or-nothing on a fatal error, export;
on SQLite and PostgreSQL (two nodes importing the same file at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appliance.contacts import ContactBook, ContactExists, CsvError, ImportReport
from appliance.queue import InvalidRequest
from tests.utils.people import migrated_engine, race


@pytest.fixture
def book(db_url: str) -> Iterator[ContactBook]:
    with migrated_engine(db_url) as engine:
        yield ContactBook(engine, default_region="US")


GOOD_AND_BAD = (
    "Mobile;First Name;Surname;Class\n"
    "+14155550101;Ann;Lee;5B\n"
    "(415) 555-0102;Bob;;5A\n"   # national format: read in the default region
    "+1555;Bad;Number;5B\n"      # invalid
    "\n"                         # blank: ignored
    "+1 415 555 0101;Ann2;;5C\n"  # duplicate of row 2
    "+14155550103;Cid;Moe;5B;extra\n"  # too many cells
    "not a number;X;;\n"         # invalid
)


def test_bad_rows_are_reported_row_by_row_and_good_ones_imported(book: ContactBook) -> None:
    report = book.import_csv(GOOD_AND_BAD.encode(), group="parents")
    assert (report.rows, report.created, report.merged, report.duplicates, report.invalid) == (6, 2, 0, 1, 3)
    assert report.columns == {"Mobile": "number", "First Name": "first_name", "Surname": "last_name",
                              "Class": "class"}
    issues = [(i.row, i.status, i.number) for i in report.issues]
    assert issues == [(4, "invalid", "+1555"), (6, "duplicate", "+14155550101"), (7, "invalid", None),
                      (8, "invalid", "not a number")]
    assert "same number as row 2" in report.issues[1].detail
    assert "5 cells" in report.issues[2].detail
    ann = book.get_by_number("+14155550101")
    assert (ann.first_name, ann.last_name, ann.fields, ann.groups) == ("Ann", "Lee", {"class": "5B"}, ("parents",))
    assert book.get_by_number("4155550102").first_name == "Bob"
    assert book.get_group("parents").members == 2


def test_existing_contacts_are_merged_keeping_what_the_file_leaves_empty(book: ContactBook) -> None:
    book.create("+14155550101", first_name="Ann", last_name="Lee", fields={"class": "5B", "bus": "7"})
    report = book.import_csv("number,first_name,last_name,class\n+14155550101,Anna,,6A\n+14155550109,Zed,,6A\n")
    assert (report.created, report.merged) == (1, 1)
    assert report.issues[0].status == "merged" and "first_name, class" in report.issues[0].detail
    ann = book.get_by_number("+14155550101")
    assert (ann.first_name, ann.last_name, ann.fields) == ("Anna", "Lee", {"bus": "7", "class": "6A"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"number,name\n+14155550101,\xff\xfe\n", "not UTF-8"),
        (b"first_name,class\nAnn,5B\n", "no column holds the phone number"),
        (b"", "empty"),
        (b'number,name\n+14155550101,"unclosed\n', "not valid CSV"),
    ],
)
def test_a_fatal_error_imports_nothing(book: ContactBook, data: bytes, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        book.import_csv(data, group="g")
    assert book.count() == 0 and book.list_groups() == []


def test_a_database_failure_mid_import_rolls_everything_back(book: ContactBook) -> None:
    rows = "number,first_name\n" + "".join(f"+1415555{i:04d},N{i}\n" for i in range(50))
    with pytest.raises(InvalidRequest):
        # The group name is refused inside the transaction, after the contacts went in.
        book.import_csv(rows, group=" ")
    assert book.count() == 0


def test_column_mapping_dry_run_and_unknown_mapped_column(book: ContactBook) -> None:
    data = "Cell,Kid,Secret\n+14155550101,Ann,xyz\n"
    report = book.import_csv(data, mapping={"Kid": "child", "Secret": ""}, dry_run=True)
    assert report.created == 1 and report.columns == {"Cell": "number", "Kid": "child", "Secret": None}
    assert book.count() == 0  # dry run wrote nothing
    book.import_csv(data, mapping={"Kid": "child", "Secret": ""})
    assert book.get_by_number("+14155550101").fields == {"child": "Ann"}
    with pytest.raises(CsvError, match="not in the file"):
        book.import_csv(data, mapping={"Parent": "first_name"})


def test_export_round_trips(book: ContactBook) -> None:
    book.create("+14155550101", name="Ann Marie Lee", fields={"class": "5B"}, groups=["parents", "bus 7"])
    book.create("+14155550102", first_name="Bob", fields={"note": 'says "hi", loudly'})
    text = book.export_csv()
    assert text.splitlines()[0] == "number,first_name,last_name,class,note,groups"
    for contact in book.list().items:
        book.delete(contact.id)
    for group in book.list_groups():
        book.delete_group(group.id)
    report = book.import_csv(text)
    assert report.created == 2 and report.issues == []
    a, b = book.get_by_number("+14155550101"), book.get_by_number("+14155550102")
    assert (a.first_name, a.last_name, a.groups) == ("Ann", "Marie Lee", ("bus 7", "parents"))
    assert b.fields == {"note": 'says "hi", loudly'}


def test_crud_and_unique_numbers(book: ContactBook) -> None:
    c = book.create("415 555 0101", first_name="Ann", fields={"class": "5B"})
    assert c.number == "+14155550101"
    with pytest.raises(ContactExists):
        book.create("+14155550101")
    with pytest.raises(InvalidRequest, match="number"):
        book.create("12")
    u = book.update(c.id, fields={"class": None, "bus": 7}, groups=["g1"])
    assert u.fields == {"bus": "7"} and u.groups == ("g1",)
    book.delete(c.id)
    assert book.count() == 0 and book.get_group("g1").static_members == 0


def test_search_ignores_case_and_takes_percent_and_underscore_literally(book: ContactBook) -> None:
    book.import_csv(
        "number,first_name,last_name\n"
        "+14155550101,Ann,Lee\n"
        "+14155550102,100%,Club\n"
        "+14155550103,1000,Club\n"
        "+14155550104,a_b,\n"
        "+14155550105,axb,\n"
        "+14155550106,back\\slash,\n"
    )

    def found(text: str) -> list[str]:
        return [c.number for c in book.list(search=text).items]

    assert found("LEE") == found("ann l") == ["+14155550101"]
    assert found("100%") == ["+14155550102"]
    assert found("%") == ["+14155550102"]
    assert found("a_b") == ["+14155550104"]
    assert found("_") == ["+14155550104"]
    assert found("k\\s") == ["+14155550106"]
    assert found("555010") == [f"+1415555010{i}" for i in range(1, 7)]


def test_two_nodes_importing_the_same_file_at_once_end_with_one_contact_per_number(db_url: str) -> None:
    with migrated_engine(db_url) as one, migrated_engine(db_url) as two:  # a connection pool per node
        books = [ContactBook(one), ContactBook(two)]
        for round_ in range(3):
            data = "number,first_name,class,groups\n" + "".join(
                f"+1415555{round_}{i:03d},N{i},5B,bus;parents\n" for i in range(300)
            )
            reports = race(*[lambda b=b: b.import_csv(data, group="school") for b in books])
            for report in reports:
                assert isinstance(report, ImportReport), report
            # One node created every contact; the other found them all and merged.
            assert sorted((r.created, r.merged) for r in reports) == [(0, 300), (300, 0)]
        assert books[0].count() == 900
        assert [(g.name, g.static_members) for g in books[1].list_groups()] == [
            ("bus", 900), ("parents", 900), ("school", 900)]
