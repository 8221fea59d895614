"""FastAPI dependencies: settings, engine, a connection in a transaction (who is asking: `gis_api.auth.deps`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from gis_api.replica import LSN_COOKIE, MIN_LSN_HEADER, valid_lsn, write_lsn
from gis_api.settings import Settings

#: methods that never change anything (RFC 9110)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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

    With a read replica configured, a request with an unsafe method notes the primary's WAL position after
    its commit (``request.state.write_lsn``): its response hands it to the client, whose next reads then
    see the write (`gis_api.replica`).
    """
    engine = request.app.state.engine
    with engine.connect() as conn:
        with conn.begin():
            yield conn
        if request.method not in SAFE_METHODS and request.app.state.read_router.replica is not None:
            try:
                request.state.write_lsn = write_lsn(conn)
            except DBAPIError:  # committed already: without the position the client may read stale, no error
                pass


def read_conn(request: Request) -> Iterator[Connection]:
    """A connection inside one read-only transaction, on the read replica when one is configured, up, and
    has replayed the client's last write (``shequ_lsn`` cookie or ``X-Shequ-Min-LSN``), else on the
    primary (``SET TRANSACTION READ ONLY`` there too). Only for routes that never write: declare it with
    ``Depends(read_conn, scope="function")`` or as `ReadConn`."""
    min_lsn = valid_lsn(request.headers.get(MIN_LSN_HEADER) or request.cookies.get(LSN_COOKIE))
    with request.app.state.read_router.begin(min_lsn) as (conn, where):
        request.state.read_from = where
        yield conn


#: a connection in a transaction committed before the response: ``conn: DbConn``
DbConn = Annotated[Connection, Depends(db_conn, scope="function")]
#: a connection for a route that only reads, on the read replica when there is one: ``conn: ReadConn``
ReadConn = Annotated[Connection, Depends(read_conn, scope="function")]
