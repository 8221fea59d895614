"""Read scaling by streaming replication (issue 14): reads of routes that only read go to a replica.

``DATABASE_URL_READ`` names a hot standby of the primary (PostgreSQL streaming replication, e.g. made by
``pg_basebackup -R``). Routes declare that they only read by taking `gis_api.deps.ReadConn` instead of
``DbConn``; every other route, every write and every request with an unsafe method stays on the primary.
Which routes read from the replica is a declaration, not a guess from the HTTP method: some GET routes
write (an audited read of residents' data, the tile cache), and a standby refuses every write.

Replica lag is handled by read-your-writes, exactly: after a request that wrote, the response carries the
primary's WAL position after its commit (``X-Shequ-Write-LSN`` and the cookie ``shequ_lsn``, 60 s). A
read that brings it back (the cookie, or the header ``X-Shequ-Min-LSN``) is served by the replica only
when the replica has replayed that far (``pg_last_wal_replay_lsn()``), else by the primary. Readers
without it see the replica as it is: behind the primary by its replay lag (milliseconds on one machine;
unbounded while replay is paused or the link is down).

A replica that cannot be reached: the read is served by the primary, a warning is logged (at most once per
retry period), and the replica is tried again after ``replica_retry_s``; the user sees no error.
Every response of such a route says where it was read (``X-Shequ-Read-From: replica | primary``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: the response header and cookie carrying the WAL position of a request's committed write
WRITE_LSN_HEADER = "x-shequ-write-lsn"
LSN_COOKIE = "shequ_lsn"
#: the request header a client without cookies sends back
MIN_LSN_HEADER = "x-shequ-min-lsn"
#: where a read-only route's connection went
READ_FROM_HEADER = "x-shequ-read-from"
LSN_COOKIE_MAX_AGE_S = 60
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def valid_lsn(value: str | None) -> str | None:
    """``value`` when it is a PostgreSQL LSN (``16/B374D848``), else None (a client's value is never trusted)."""
    return value if value and _LSN.match(value) else None


class ReadRouter:
    """Where a read-only request's connection comes from: the replica when it is up and caught up, else
    the primary. ``replica`` None = no replica configured (every read goes to the primary)."""

    def __init__(self, primary: Engine, replica: Engine | None, retry_s: float = 5.0):
        self.primary = primary
        self.replica = replica
        self.retry_s = retry_s
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _replica_connection(self, min_lsn: str | None) -> Connection | None:
        """A connection to the replica when it is usable for a reader who must see ``min_lsn``."""
        if self.replica is None or time.monotonic() < self._down_until:
            return None
        try:
            conn = self.replica.connect()
        except DBAPIError as exc:
            self._mark_down(exc)
            return None
        if min_lsn is None:
            return conn
        try:
            caught_up = conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"),
                                     {"lsn": min_lsn}).scalar()
            conn.rollback()
        except DBAPIError as exc:
            conn.close()
            self._mark_down(exc)
            return None
        if caught_up:
            return conn
        conn.close()
        return None

    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            first = self._down_until == 0.0 or time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self.retry_s
        if first:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()
            log.warning("read replica unavailable, reads go to the primary for %.0f s: %s", self.retry_s,
                        reason[0][:200] if reason else type(exc).__name__)

    @contextmanager
    def begin(self, min_lsn: str | None = None) -> Iterator[tuple[Connection, str]]:
        """(connection in a transaction, "replica" | "primary"); the transaction ends with the block."""
        conn = self._replica_connection(min_lsn)
        if conn is None:
            with self.primary.begin() as primary_conn:
                # read-only on the primary too: a declared read-only route that writes fails the same way
                # with or without a replica (so every test of it, replica or not, would catch the write)
                primary_conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield primary_conn, "primary"
            return
        with conn, conn.begin():
            yield conn, "replica"


def write_lsn(conn: Connection) -> str:
    """The primary's WAL insert position now: after a commit on ``conn``, at or past that commit's record."""
    return str(conn.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one())


class ReadYourWritesMiddleware:
    """Pure ASGI middleware: a response to a request that wrote carries the write's WAL position (header
    and cookie, set from ``request.state.write_lsn`` by `gis_api.deps.db_conn`); every response says which
    worker process answered (``X-Shequ-Worker``: its pid, for checking several workers behind one port; read
    per response, since a forking server makes the app in its parent before the workers exist)."""

    def __init__(self, app: Any, worker_id: str | None = None):
        self.app = app
        self.worker = worker_id.encode() if worker_id is not None else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Add the headers at the start of the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        state = scope.setdefault("state", {})  # the dict behind ``request.state``

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-shequ-worker", self.worker or str(os.getpid()).encode()))
                if state.get("read_from"):
                    headers.append((READ_FROM_HEADER.encode(), str(state["read_from"]).encode()))
                lsn = valid_lsn(state.get("write_lsn"))
                if lsn:
                    headers.append((WRITE_LSN_HEADER.encode(), lsn.encode()))
                    headers.append((b"set-cookie", f"{LSN_COOKIE}={lsn}; Max-Age={LSN_COOKIE_MAX_AGE_S}; "
                                                   "Path=/; HttpOnly; SameSite=Lax".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
