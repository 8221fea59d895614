"""FastAPI dependencies: settings, engine, a connection in a transaction (who is asking: `gis_api.auth.deps`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine

from gis_api.settings import Settings


def settings(request: Request) -> Settings:
    """Dependency: the app's settings."""
    return request.app.state.settings


def db_engine(request: Request) -> Engine:
    """Dependency: the app's SQLAlchemy engine."""
    return request.app.state.engine


def db_conn(request: Request) -> Iterator[Connection]:
    """A connection inside one transaction: committed when the route returns, rolled back on error.

    Declare it with ``scope="function"`` (or use `DbConn`): the commit then happens before the response
    is sent, so a failed commit is an error response, never a 2xx for a write that did not land.
    ``tests/auth/test_route_policies.py`` fails on a route that forgets.
    """
    with request.app.state.engine.begin() as conn:
        yield conn


#: a connection in a transaction committed before the response: ``conn: DbConn``
DbConn = Annotated[Connection, Depends(db_conn, scope="function")]
