"""Shared pytest fixtures.

Simulated modems (``appliance.modem.simulator``): ``sim_factory(persona, **kwargs)`` makes
and starts a :class:`SimulatedModem` whose links live in a per-test ``link_dir`` and stops
it at teardown (``start=False`` leaves it unstarted); ``sim800``, ``huawei`` and ``quectel``
are one started simulator each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from appliance.modem.simulator import SimulatedModem


@pytest.fixture
def sim_link_dir(tmp_path: Path) -> Path:
    """Where simulated modems put their ``ttyUSB<k>`` and by-id links in this test."""
    path = tmp_path / "dev"
    path.mkdir()
    return path


@pytest.fixture
def sim_factory(sim_link_dir: Path) -> Iterator[Callable[..., SimulatedModem]]:
    from appliance.modem.simulator import SimulatedModem

    made: list[SimulatedModem] = []

    def make(persona: str = "sim800", *, start: bool = True, **kwargs: Any) -> SimulatedModem:
        kwargs.setdefault("link_dir", sim_link_dir)
        sim = SimulatedModem(persona, **kwargs)
        made.append(sim)
        if start:
            sim.start()
        return sim

    yield make
    for sim in made:
        sim.stop()


@pytest.fixture
def sim800(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("sim800")


@pytest.fixture
def huawei(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("huawei")


@pytest.fixture
def quectel(sim_factory: Callable[..., SimulatedModem]) -> SimulatedModem:
    return sim_factory("quectel")


class LiveServer:
    """A running appliance (simulated modems) with its API on a free localhost port."""

    def __init__(self, app: Any, url: str, admin_key: str) -> None:
        self.app = app
        self.url = url
        self.admin_key = admin_key

    @property
    def simulators(self) -> list[SimulatedModem]:
        return self.app.simulators

    def client(self, key: str | None = None, **kwargs: Any) -> Any:
        """An httpx client for the API, authenticated with ``key`` (default: admin)."""
        import httpx

        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start appliances: ``make(simulate=2, settings=None, simulator_kwargs=None)``.

    The database lives in ``tmp_path``; simulated modems have zero latency and no caps
    unless ``settings`` (a dict merged into the defaults) says otherwise.
    """
    import socket
    import threading
    import time

    import uvicorn

    from appliance.api import create_app
    from appliance.config import Settings
    from appliance.daemon import Appliance
    from appliance.web import mount_web

    running: list[tuple[Any, Any, threading.Thread]] = []

    def make(
        simulate: int = 2,
        settings: dict[str, Any] | None = None,
        simulator_kwargs: dict[str, Any] | None = None,
    ) -> LiveServer:
        data: dict[str, Any] = {
            "appliance": {"database_url": f"sqlite:///{tmp_path / f'appliance{len(running)}.db'}"},
            "simulator": {"latency_s": 0.0, "max_parts_per_minute": 100000,
                          "max_parts_per_hour": 100000, "max_parts_per_day": 100000},
        }
        for key, value in (settings or {}).items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        appliance = Appliance(
            Settings.model_validate(data), simulate=simulate, simulator_kwargs=simulator_kwargs,
            modem_kwargs={"poll_interval": 2.0},
        )
        appliance.start()
        app = create_app(appliance)
        mount_web(app)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((appliance, server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        if not appliance.wait_online(15):
            raise RuntimeError("simulated modems did not come online")
        _, admin_key = appliance.keys.create("test-admin", ["admin"])
        return LiveServer(appliance, f"http://127.0.0.1:{port}", admin_key)

    yield make
    for appliance, server, thread in reversed(running):
        server.should_exit = True
        thread.join(10)
        appliance.stop()


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """One appliance with two zero-latency simulated modems and an admin key."""
    return live_server_factory(simulate=2)


# --------------------------------------------------------------------------- web pages

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF_FIELD.search(html)
    assert found is not None, "the page has no form with a csrf_token"
    return found.group(1)


class WebClient:
    """An httpx client signed in to a live server's pages as ``username``.

    ``post(path, data)`` adds the session's CSRF token (read from ``GET /account``) unless
    ``data`` has one; redirects are not followed, so tests see the 303.
    """

    def __init__(self, server: LiveServer, username: str, password: str) -> None:
        import httpx

        self.server = server
        self.username = username
        self.http = httpx.Client(base_url=server.url, timeout=10, follow_redirects=False,
                                 headers={"Origin": server.url})
        form = self.http.get("/login")
        response = self.http.post("/login", data={
            "username": username, "password": password, "next": "/", "csrf_token": csrf_of(form.text),
        })
        assert response.status_code == 303, response.text
        self.csrf = csrf_of(self.http.get("/account").text)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.http.post(path, data=data, **kwargs)


WEB_PASSWORD = "correct horse battery"


@pytest.fixture
def web_client() -> Iterator[Callable[..., WebClient]]:
    """``web_client(server, role="staff", username=None)``: a user made on ``server`` and an
    httpx client signed in as that user."""
    from appliance.web import Users

    clients: list[WebClient] = []

    def make(server: LiveServer, role: str = "staff", username: str | None = None) -> WebClient:
        name = username or f"{role}{len(clients) + 1}"
        Users(server.app.queue.engine).create(name, WEB_PASSWORD, role=role)
        client = WebClient(server, name, WEB_PASSWORD)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.http.close()


# ---------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One fresh PostgreSQL database for the whole session, migrated to the newest schema."""
    from tests.utils.db import fresh_postgres_database, require_postgres

    require_postgres(pytest)
    from appliance.db import make_engine, migrate

    with fresh_postgres_database() as url:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each engine: a SQLite file in ``tmp_path``, or the session's
    PostgreSQL database with every table emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'appliance.db'}"
    from tests.utils.db import empty_tables

    url = request.getfixturevalue("postgres_database")
    empty_tables(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'appliance.db'}"
