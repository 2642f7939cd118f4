"""Findings of an outside review of the API, each typed as a clerk, a spreadsheet, a phone
or an attacker would: files read by path, huge ids, deep metadata, internal errors on a
keep-alive connection, formulas in exported CSV, the key checked first, complete ``Allow``
headers, a valid OpenAPI document, invisible texts, the docs page's headers and the
broadcast audience's cap. The app runs in-process (httpx over ASGI) on a real queue."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.api import ApiKeys, create_app
from appliance.api.params import MAX_ID, iter_routes
from appliance.config import Settings
from appliance.contacts import ContactBook
from appliance.contacts.csvio import neutralise, read_csv, restore
from appliance.queue import Dispatcher, Queue
from appliance.web import Users, mount_web
from tests.utils.services import ApiServices

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"


@dataclass
class Appliance:
    app: FastAPI
    services: ApiServices
    key: str
    tmp: Path

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        return TestClient(self.app, base_url="http://appliance", follow_redirects=False,
                          headers={"Authorization": f"Bearer {key or self.key}", **headers})

    def anonymous(self, **headers: str) -> httpx.Client:
        return TestClient(self.app, base_url="http://appliance", follow_redirects=False, headers=headers)

    @property
    def import_dir(self) -> Path:
        path = self.services.settings.import_dir()
        path.mkdir(exist_ok=True)
        return path


def make_appliance(tmp: Path, **settings: Any) -> Appliance:
    data: dict[str, Any] = {"appliance": {"database_url": f"sqlite:///{tmp / 'appliance.db'}"}}
    for section, values in settings.items():
        data[section] = {**data.get(section, {}), **values}
    config = Settings.model_validate(data)
    queue = Queue(config.appliance.database_url)
    keys = ApiKeys(queue.engine)
    services = ApiServices(config, queue, keys, Dispatcher(queue, []))
    app = create_app(services)
    mount_web(app)
    return Appliance(app, services, keys.create("ops", ["admin"])[1], tmp)


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    made = make_appliance(tmp_path)
    yield made
    made.services.queue.close()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status and doc["detail"]
    return doc


def fields(doc: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["detail"] for e in doc.get("errors", [])}


# ---------------------------------------------------------------------- 1. import by path

SECRET_LINE = "root:x:0:0:root:/root:/bin/bash"


def test_import_by_path_reads_no_file_outside_the_import_directory(appliance: Appliance) -> None:
    c = appliance.client()
    (appliance.import_dir / "ok.csv").write_text("number\n+14155550100\n")
    os.symlink("/etc/passwd", appliance.import_dir / "passwd.csv")
    for path, mapping in [
        ("/etc/passwd", {}), ("/etc/passwd", {SECRET_LINE: "number"}), ("/proc/self/environ", {}),
        ("../appliance.db", {}), ("passwd.csv", {}), (str(appliance.import_dir / ".." / ".." / "etc" / "passwd"), {}),
    ]:
        r = c.post("/v1/contacts/import", json={"path": path, "map": mapping})
        doc = problem(r, 422)
        assert set(fields(doc)) == {"path"}, doc
        assert "root:" not in r.text and "PATH=" not in r.text and "import directory" in r.text
    assert c.post("/v1/contacts/import", json={"path": "ok.csv"}).json()["created"] == 1
    assert c.post("/v1/contacts/import", json={"path": str(appliance.import_dir / "ok.csv")}).json()["merged"] == 1


def test_a_nul_byte_a_directory_and_a_missing_file_are_422_naming_path(appliance: Appliance) -> None:
    c = appliance.client()
    (appliance.import_dir / "sub").mkdir()
    for path, words in [("ok\x00.csv", "NUL"), ("/etc/passwd\x00", "NUL"), ("sub", "not a regular file"),
                        ("nothing.csv", "no file"), ("", "path")]:
        doc = problem(c.post("/v1/contacts/import", json={"path": path}), 422)
        assert "path" in fields(doc) and words in doc["detail"], doc


def test_a_fifo_and_a_huge_sparse_file_neither_block_nor_get_read(appliance: Appliance) -> None:
    c = appliance.client()
    fifo = appliance.import_dir / "pipe.csv"
    os.mkfifo(fifo)
    sparse = appliance.import_dir / "huge.csv"
    with sparse.open("wb") as f:
        f.truncate(64 * 1024**3)  # 64 GB of nothing: no disk used, and no reading it either
    os.symlink("/dev/zero", appliance.import_dir / "zero.csv")

    def release_fifo() -> None:  # were the server to open the FIFO blocking, it would wait for a writer
        with open(fifo, "wb"):
            pass

    guard = threading.Timer(60, release_fifo)
    guard.daemon = True
    guard.start()
    try:
        doc = problem(c.post("/v1/contacts/import", json={"path": "pipe.csv"}), 422)
        assert "not a regular file" in fields(doc)["path"]
    finally:
        guard.cancel()
    doc = problem(c.post("/v1/contacts/import", json={"path": "huge.csv"}), 422)
    assert "over 2 MB" in fields(doc)["path"]
    doc = problem(c.post("/v1/contacts/import", json={"path": "zero.csv"}), 422)
    assert "import directory" in fields(doc)["path"]
    big = appliance.import_dir / "big.csv"
    big.write_bytes(b"number\n" + b"+14155550100\n" * 200_000)  # 2.6 MB: over the upload cap
    assert "over 2 MB" in fields(problem(c.post("/v1/contacts/import", json={"path": "big.csv"}), 422))["path"]


def test_a_report_quotes_no_cell_of_a_failed_row_but_its_number_cut_short(appliance: Appliance) -> None:
    c = appliance.client()
    line = SECRET_LINE + ":" + "x" * 200
    (appliance.import_dir / "rows.csv").write_text(f"number,note\n{line},top-secret-note\n+14155550100,fine\n")
    r = c.post("/v1/contacts/import", json={"path": "rows.csv"})
    assert r.status_code == 200, r.text
    issue = r.json()["issues"][0]
    assert issue["status"] == "invalid" and len(issue["number"]) <= 41 and len(issue["detail"]) < 120
    assert "top-secret-note" not in r.text and "x" * 50 not in r.text
    upload = c.post("/v1/contacts/import", content=f"number,note\n{line},top-secret-note\n",
                    headers={"Content-Type": "text/csv"})
    assert "top-secret-note" not in upload.text and "x" * 50 not in upload.text
    header = c.post("/v1/contacts/import", content=("y" * 500 + "\n1\n"), headers={"Content-Type": "text/csv"})
    assert problem(header, 422) and "y" * 50 not in header.text


def test_the_import_directory_follows_the_database() -> None:
    def import_dir(url: str, configured: str = "") -> Path:
        return Settings.model_validate({"appliance": {"database_url": url},
                                        "contacts": {"import_dir": configured}}).import_dir()

    assert import_dir("sqlite:////srv/sms/appliance.db") == Path("/srv/sms/imports")
    assert import_dir("sqlite+pysqlite:////srv/sms/appliance.db?timeout=5") == Path("/srv/sms/imports")
    assert import_dir("postgresql://sms@db/appliance") == Path("/var/lib/appliance/imports")
    assert import_dir("sqlite:////srv/sms/appliance.db", "/data/drop") == Path("/data/drop")


# ---------------------------------------------------------------------- 2. ids of 2**63 and more


def _int_path_routes(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path format, int parameters) of every route with an integer path parameter."""
    found = []
    for route in iter_routes(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        ints = [p.name for p in dependant.path_params if p.field_info.annotation is int]
        for method in sorted(route.methods or ()):
            if ints:
                found.append((method, route.path_format, ints))
    return found


def _signed_in(appliance: Appliance) -> tuple[httpx.Client, str]:
    Users(appliance.services.queue.engine).create("clerk", PASSWORD, role="admin")
    web = appliance.anonymous(Origin="http://appliance")
    token = re.search(r'name="csrf_token" value="([^"]*)"', web.get("/login").text)
    assert token is not None
    r = web.post("/login", data={"username": "clerk", "password": PASSWORD, "next": "/", "csrf_token": token[1]})
    assert r.status_code == 303, r.text
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', web.get("/account").text)
    assert csrf is not None
    return web, csrf[1]


# The staff pages' broadcast routes live in appliance/web/pages/broadcasts.py, changed on
# another branch: they need `BroadcastId = record_id("broadcast")` and `{broadcast_id:int}`.
_ELSEWHERE = re.compile(r"^/broadcasts/")


def _huge_ids_not_refused(appliance: Appliance, *, elsewhere: bool) -> list[str]:
    """``METHOD URL: status`` of each route (of the API or the pages, those in
    :data:`_ELSEWHERE` or the others) whose id of 2**63 or more got neither 404 nor 422."""
    routes = [r for r in _int_path_routes(appliance.app) if bool(_ELSEWHERE.match(r[1])) == elsewhere]
    assert routes
    api = appliance.client()
    web, csrf = _signed_in(appliance)
    wrong: list[str] = []
    for method, path, ints in routes:
        for value in (2**63, 10**30, MAX_ID + 2**64, MAX_ID):
            url = path
            for name in ints:
                url = url.replace("{" + name + "}", str(value))
            if url.startswith("/v1/"):
                r = api.request(method, url, json={})
            else:
                r = web.request(method, url, data={"csrf_token": csrf} if method == "POST" else None,
                                headers={"Accept": "text/html"})
            # The largest id there can be is looked up like any other: not found.
            if r.status_code not in ((404,) if value == MAX_ID else (404, 422)):
                wrong.append(f"{method} {url}: {r.status_code}")
    return wrong


def test_every_integer_path_parameter_is_bounded(appliance: Appliance) -> None:
    paths = {path for _, path, _ in _int_path_routes(appliance.app)}
    assert {"/v1/messages/{message_id}", "/v1/contacts/{contact_id}", "/v1/broadcasts/{broadcast_id}",
            "/v1/broadcasts/{broadcast_id}/start"} <= paths
    assert _huge_ids_not_refused(appliance, elsewhere=False) == []


def test_the_staff_broadcast_pages_bound_their_ids(appliance: Appliance) -> None:
    assert _huge_ids_not_refused(appliance, elsewhere=True) == []


def test_ids_are_digits_so_a_sibling_path_is_no_id(appliance: Appliance) -> None:
    c = appliance.client()
    problem(c.get("/v1/messages/abc"), 404)
    assert "message_id" in fields(problem(c.get("/v1/messages/0"), 422))
    assert "contact_id" in fields(problem(c.get("/v1/contacts/9223372036854775808"), 422))


# ---------------------------------------------------------------------- 3. metadata at the door


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_metadata_is_bounded_in_depth_and_size(appliance: Appliance) -> None:
    c = appliance.client()

    def send(metadata: Any) -> httpx.Response:
        return c.post("/v1/messages", json={"to": "+14155550100", "body": "hi", "metadata": metadata})

    for bad, words in [(_nested(256), "8 levels"), (_nested(9), "8 levels"), ({"a": [[[[[[[[1]]]]]]]]}, "8 levels"),
                       ({"note": "x" * 5000}, "4,096"), ({str(i): i for i in range(600)}, "4,096")]:
        doc = problem(send(bad), 422)
        assert set(fields(doc)) == {"metadata"} and words in doc["detail"], doc
    deepest = _nested(8)
    assert send(deepest).status_code == 202
    assert send({"campaign": "closure", "tags": ["a", "b"], "n": 3}).status_code == 202
    listing = c.get("/v1/messages")
    assert listing.status_code == 200 and listing.json()["items"][1]["metadata"] == deepest
    body = b'{"to": "+14155550100", "body": "x", "metadata": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001
    assert c.post("/v1/messages", content=body, headers={"Content-Type": "application/json"}).status_code in (400, 422)


# ---------------------------------------------------------------------- 4. a 500 keeps the connection


@pytest.fixture
def served(appliance: Appliance) -> Iterator[str]:
    """``appliance`` on a real HTTP server (uvicorn, keep-alive) with a route that breaks."""
    import uvicorn

    @appliance.app.get("/test-only/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug in a route")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(appliance.app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_an_internal_error_is_a_problem_logged_once_on_a_connection_kept_alive(
    served: str, appliance: Appliance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=served, timeout=30) as client:
        first = client.get("/healthz")
        broken = client.get("/test-only/boom", headers={"Accept": "application/json"})
        doc = problem(broken, 500)
        assert "internal error" in doc["detail"] and "a bug" not in broken.text
        after = client.get("/v1/messages", headers={"Authorization": f"Bearer {appliance.key}"})
        assert after.status_code == 200
        assert _local_port(first) == _local_port(broken) == _local_port(after)  # one connection throughout
    tracebacks = [r for r in caplog.records if r.exc_info and "a bug in a route" in str(r.exc_info[1])]
    assert len(tracebacks) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


# ---------------------------------------------------------------------- 5. formulas in exported CSV

FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'=already quoted",
            "''+two quotes", "plain", "O'Brien", "'quoted but harmless", ""]


@pytest.mark.parametrize("value", FORMULAS)
def test_neutralise_is_undone_by_restore(value: str) -> None:
    cell = neutralise(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert restore(cell) == value


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_exported_cells_never_start_a_formula_and_import_back_the_same(appliance: Appliance) -> None:
    c = appliance.client()
    made = c.post("/v1/contacts", json={
        "number": "+14155550100", "first_name": "=HYPERLINK(\"http://evil\",\"click\")", "last_name": "@SUM(A1)",
        "fields": {"class": "-2+3", "note": "+cmd|' /C calc'!A0", "plain": "5B"}, "groups": ["=evil"]})
    assert made.status_code == 201, made.text
    staff, _ = _signed_in(appliance)
    for text in (c.get("/v1/contacts/export").text, staff.get("/contacts/export.csv").text):
        rows = _cells(text)
        for row in rows:
            for i, cell in enumerate(row):
                if rows[0][i] == "number" and row is not rows[0]:
                    assert cell == "+14155550100"  # E.164 stays importable as is
                else:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (rows[0][i], cell)
        # Importing the export gives the same contact back.
        other = ContactBook(Queue(appliance.tmp / f"other-{len(text)}.db").engine)
        other.import_csv(text)
        again = other.get_by_number("+14155550100")
        assert (again.first_name, again.last_name) == ("=HYPERLINK(\"http://evil\",\"click\")", "@SUM(A1)")
        assert again.fields == {"class": "-2+3", "note": "+cmd|' /C calc'!A0", "plain": "5B"}
        assert list(again.groups) == ["=evil"]


def test_a_number_column_that_is_not_e164_is_neutralised_too() -> None:
    from appliance.contacts.csvio import write_csv

    text = write_csv([{"number": "+1+cmd", "x": "1"}, {"number": "+14155550100", "x": "2"}], ["number", "x"])
    assert _cells(text)[1:] == [["'+1+cmd", "1"], ["+14155550100", "2"]]
    assert read_csv(text).rows[0][1] == ["+1+cmd", "1"]


# ---------------------------------------------------------------------- 6. the key first


def _v1_routes(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for route in iter_routes(app):
        path = getattr(route, "path_format", None) or ""
        if path.startswith("/v1/") or path == "/v1":
            for method in sorted(route.methods or ()):
                out.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return out


def test_without_a_valid_key_every_v1_route_is_401_whatever_the_body(appliance: Appliance) -> None:
    routes = _v1_routes(appliance.app)
    assert len(routes) >= 30
    anonymous = appliance.anonymous()
    wrong = appliance.client("sk_1_not-a-key")
    basic = appliance.client()
    basic.headers["Authorization"] = "Basic b3BzOm9wcw=="
    bodies: list[dict[str, Any]] = [
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"content": b"[" * 50_000, "headers": {"Content-Type": "application/json"}},
        {"content": b"number\n+1\n", "headers": {"Content-Type": "text/csv"}},
        {"content": b"x" * (3 * 1024 * 1024), "headers": {"Content-Type": "application/json"}},  # over the cap
    ]
    for method, path in routes:
        for client in (anonymous, wrong, basic):
            for body in bodies:
                r = client.request(method, path, **body)
                assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text[:200]}"
                assert r.headers["www-authenticate"].startswith("Bearer")
    for path in ("/v1/messages/9223372036854775808", "/v1/nowhere", "/v1"):
        assert anonymous.get(path).status_code == 401


# ---------------------------------------------------------------------- 7. 405 with a complete Allow


def test_405_lists_every_method_of_the_path(appliance: Appliance) -> None:
    c = appliance.client()
    for method, path, allow in [("GET", "/v1/broadcasts/preview", "POST"), ("PATCH", "/v1/contacts/export", "GET"),
                                ("PUT", "/v1/contacts", "GET, POST"), ("PUT", "/v1/contacts/7", "GET, PATCH, DELETE"),
                                ("GET", "/v1/groups/x/members/remove", "POST")]:
        r = c.request(method, path)
        problem(r, 405)
        assert r.headers["allow"] == allow, (method, path, r.headers["allow"])
    # Every path: a method it lacks gets the methods of every route of that path.
    by_path: dict[str, set[str]] = {}
    for route in iter_routes(appliance.app):
        if (path := getattr(route, "path_format", None)) and path.startswith("/v1/"):
            by_path.setdefault(path, set()).update(route.methods or ())
    for path, methods in by_path.items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        r = c.request("TRACE", url)
        problem(r, 405)
        assert set(r.headers["allow"].split(", ")) == methods, (path, r.headers["allow"])


# ---------------------------------------------------------------------- 8. OpenAPI


def test_openapi_validates_and_documents_errors_as_problem_json(appliance: Appliance) -> None:
    from openapi_spec_validator import validate

    spec = appliance.anonymous().get("/openapi.json").json()
    validate(spec)
    assert "HTTPValidationError" not in str(spec)
    errors = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    errors += 1
                    assert list(response["content"]) == [PROBLEM], (method, path, code)
    assert errors > 50
    body = spec["paths"]["/v1/contacts/import"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "path" in body["properties"]


# ---------------------------------------------------------------------- 9. invisible texts

INVISIBLE = ["\u200b", "\u200b\u200c\ufeff", "   ", "\n\n", " \t\r\n ", "\u2060\u200d", "\u3164"]


def test_a_text_that_shows_nothing_is_refused_naming_its_field(appliance: Appliance) -> None:
    c = appliance.client()
    for text in INVISIBLE:
        doc = problem(c.post("/v1/messages", json={"to": "+14155550100", "body": text}), 422)
        assert set(fields(doc)) == {"body"}, (text, doc)
        for route in ("/v1/broadcasts/preview", "/v1/broadcasts"):
            doc = problem(c.post(route, json={"template": text, "audience": {"numbers": ["+14155550100"]}}), 422)
            assert set(fields(doc)) == {"template"}, (text, doc)
    assert c.post("/v1/messages", json={"to": "+14155550100", "body": "\u200bHi"}).status_code == 202
    assert c.post("/v1/messages", json={"to": "+14155550100", "body": "👍"}).status_code == 202
    staff, csrf = _signed_in(appliance)
    for text in INVISIBLE:
        r = staff.post("/compose/preview", data={"numbers": "+14155550100", "text": text, "kind": "transactional",
                                                 "when": "now", "csrf_token": csrf})
        assert r.status_code == 422 and 'id="f-text-error"' in r.text, text


# ---------------------------------------------------------------------- 10. docs headers, audience cap


def test_docs_work_offline_under_a_strict_policy_and_refuse_framing(appliance: Appliance) -> None:
    c = appliance.anonymous()
    page = c.get("/docs")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy and "http" not in policy
    assert "http" not in page.text  # nothing from a CDN
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)  # no inline script
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        r = c.get(asset)
        assert r.status_code == 200 and r.content, asset
        assert r.headers["x-frame-options"] == "DENY"
    assert c.get("/docs/assets/../../etc/passwd").status_code == 404
    assert c.get("/docs/assets/app.py").status_code == 404


def test_a_broadcast_audience_over_the_cap_is_refused_naming_audience(tmp_path: Path) -> None:
    appliance = make_appliance(tmp_path, broadcasts={"max_recipients": 3})
    c = appliance.client()
    four = [f"+1415555010{i}" for i in range(4)]
    for route in ("/v1/broadcasts/preview", "/v1/broadcasts"):
        doc = problem(c.post(route, json={"template": "Hi", "audience": {"numbers": four}}), 422)
        assert set(fields(doc)) == {"audience"} and "at most 3" in doc["detail"], doc
    csv_audience = "number\n" + "\n".join(four) + "\n"
    doc = problem(c.post("/v1/broadcasts", json={"template": "Hi", "audience": {"csv": csv_audience}}), 422)
    assert "audience" in fields(doc)
    assert c.post("/v1/broadcasts/preview", json={"template": "Hi", "audience": {"numbers": four[:3]}}).json()[
        "recipients"] == 3
    # A group that grows past the cap after the draft was made cannot be started.
    c.post("/v1/contacts/import", params={"group": "parents"}, content="number\n" + "\n".join(four[:3]) + "\n",
           headers={"Content-Type": "text/csv"})
    draft = c.post("/v1/broadcasts", json={"template": "Hi", "audience": {"groups": ["parents"]}})
    assert draft.status_code == 201, draft.text
    c.post("/v1/contacts", json={"number": four[3], "groups": ["parents"]})
    doc = problem(c.post(f"/v1/broadcasts/{draft.json()['id']}/start"), 422)
    assert "audience" in fields(doc)
    assert Settings().broadcasts.max_recipients == 10_000
    appliance.services.queue.close()
