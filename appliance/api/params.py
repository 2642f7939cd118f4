"""Parameters shared by the routes: record ids in paths, and the app's routes one by one.

Ids are database integers: SQLite and PostgreSQL store at most ``2**63 - 1``, and a larger
number in a URL used to reach the database and fail there (500). :func:`record_id` bounds
the parameter, so such a request is a 422 naming it; routes declare it with the ``:int``
convertor (``/v1/messages/{message_id:int}``), so ``/v1/messages/preview`` is no id at all
and a sibling route of that path answers (or 405 lists the methods it has).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import FastAPI, Path

__all__ = ["MAX_ID", "iter_routes", "record_id"]

MAX_ID = 2**63 - 1


def record_id(what: str) -> Any:
    """The annotated type of a ``{..._id:int}`` path parameter naming one ``what``."""
    return Annotated[int, Path(ge=1, le=MAX_ID, description=f"The {what} id.")]


def iter_routes(app: FastAPI) -> Iterator[Any]:
    """Every route of ``app`` (path, methods, endpoint, dependant...), routers included
    through ``include_router`` unfolded whichever way this FastAPI keeps them."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI keeping included routers nested
    except ImportError:  # pragma: no cover - FastAPI versions that copy the routes in
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)
