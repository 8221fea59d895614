"""Audit every write in one place: a route declares ``dependencies=[audited("address.retire", read=...)]``.

The dependency shares the route's connection (FastAPI caches ``db_conn`` per request), reads the
record before the route runs and again after it (still inside the transaction), and appends one entry to
the hash-chained log — who, role, from where, request id, endpoint, record ids, before and after — in
the same transaction, so the entry commits (or vanishes) with the change it records. A route that
raises writes nothing and logs nothing here (denials and failed logins are logged where they happen).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.engine import Connection

from gis_api.deps import db_conn

from . import audit
from . import roles as r
from .deps import audit_fields, current_principal

#: reads the audited record(s) from the request's path parameters: (conn, path params) → JSON-able
Reader = Callable[[Connection, dict[str, str]], Any]


def audited(action: str, read: Reader | None = None) -> Any:
    """``Depends(...)`` on a dependency that appends an audit entry for ``action`` after the route succeeds.

    Function-scoped, like the connection it shares: it runs before the commit, which runs before the
    response is sent.
    """

    def dependency(request: Request, principal: r.Principal = Depends(current_principal),
                   conn: Connection = Depends(db_conn, scope="function")) -> Iterator[None]:
        params = {k: str(v) for k, v in request.path_params.items()}
        before = read(conn, params) if read else None
        request.state.audit_record_ids = list(params.values())
        yield
        after = read(conn, params) if read else None
        ids = getattr(request.state, "audit_record_ids", None) or list(params.values())
        audit.append(conn, audit.AuditEntry.of(
            principal, action, record_ids=[str(i) for i in ids], before=before, after=after,
            **audit_fields(request)))

    dependency.__name__ = f"audited_{action.replace('.', '_')}"
    return Depends(dependency, scope="function")


def note_records(request: Request, *ids: Any) -> None:
    """Name the records a write touched when they are not (all) in the path, e.g. a created code."""
    request.state.audit_record_ids = [str(i) for i in ids if i is not None]
