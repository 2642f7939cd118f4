"""The staff pages in-process (FastAPI's TestClient) over a queue on either engine.

:func:`signed_in_pages` builds the API app with the pages mounted over a real
:class:`~appliance.queue.Queue` at a database URL (the ``db_url`` fixture's), creates a
user and yields the services and a client signed in as that user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from appliance.api import ApiKeys, create_app
from appliance.config import Settings
from appliance.queue import Dispatcher, Queue
from appliance.web import Users, mount_web
from tests.utils.services import ApiServices

__all__ = ["ORIGIN", "PageServices", "signed_in_pages"]

ORIGIN = "http://testserver"
_PASSWORD = "correct horse battery"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


PageServices = ApiServices  # the pages read what the API reads


@contextmanager
def signed_in_pages(db_url: str, *, role: str = "staff") -> Iterator[tuple[PageServices, TestClient]]:
    """The pages over a queue at ``db_url`` and a client signed in with ``role``."""
    settings = Settings.model_validate({"appliance": {"database_url": db_url, "default_region": "US"}})
    queue = Queue(db_url)
    services = PageServices(settings, queue, ApiKeys(queue.engine), Dispatcher(queue, []))
    app = create_app(services)
    mount_web(app)
    Users(queue.engine).create(role, _PASSWORD, role=role)
    try:
        with TestClient(app, headers={"Origin": ORIGIN}) as client:
            form = client.get("/login")
            token = _CSRF_FIELD.search(form.text)
            assert token is not None, "the sign-in page has no csrf_token"
            signed = client.post("/login", follow_redirects=False, data={
                "username": role, "password": _PASSWORD, "next": "/", "csrf_token": token.group(1),
            })
            assert signed.status_code == 303, signed.text
            yield services, client
    finally:
        queue.close()
