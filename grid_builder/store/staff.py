"""Grid staff (网格员 / 微网格长): current holders, closing a term, new terms, history."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_STAFF_COLS = "id, grid_code, person_ref, role, valid_from, valid_to"


def _staff_dict(r) -> dict:
    return {
        "id": int(r["id"]),
        "grid_code": r["grid_code"],
        "person_ref": r["person_ref"],
        "role": r["role"],
        "valid_from": r["valid_from"],
        "valid_to": r["valid_to"],
        "current": r["valid_to"] is None,
    }


def current_staff_for_update(conn: Connection, grid_code: str, role: str) -> dict | None:
    """The current holder of ``role`` on the grid, row-locked until the caller's transaction ends."""
    r = (
        conn.execute(
            text(
                f"SELECT {_STAFF_COLS} FROM grid_staff WHERE grid_code = :g AND role = :r AND valid_to IS NULL FOR UPDATE"
            ),
            {"g": grid_code, "r": role},
        )
        .mappings()
        .first()
    )
    return _staff_dict(r) if r else None


def close_staff(conn: Connection, staff_id: int, valid_to) -> None:
    """End an open term at ``valid_to``."""
    conn.execute(
        text("UPDATE grid_staff SET valid_to = :t WHERE id = :i AND valid_to IS NULL"),
        {"i": staff_id, "t": valid_to},
    )


def insert_staff(conn: Connection, grid_code: str, person_ref: str, role: str, valid_from) -> dict:
    """Start a new term; returns the inserted row."""
    r = (
        conn.execute(
            text(
                "INSERT INTO grid_staff (grid_code, person_ref, role, valid_from) VALUES (:g, :p, :r, :f) "
                f"RETURNING {_STAFF_COLS}"
            ),
            {"g": grid_code, "p": person_ref, "r": role, "f": valid_from},
        )
        .mappings()
        .one()
    )
    return _staff_dict(r)


def staff_of(conn: Connection, grid_code: str, current_only: bool = False) -> list[dict]:
    """Assignments of a grid / micro-grid, current ones first, then past terms newest first."""
    rows = conn.execute(
        text(
            f"SELECT {_STAFF_COLS} FROM grid_staff WHERE grid_code = :g AND (NOT :cur OR valid_to IS NULL) "
            "ORDER BY (valid_to IS NULL) DESC, role, valid_from DESC, id DESC"
        ),
        {"g": grid_code, "cur": current_only},
    ).mappings()
    return [_staff_dict(r) for r in rows]
