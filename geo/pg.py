"""Catalogue probes shared by the stores: which database a connection is on, does a table / column exist."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


def db_key(bind: Connection | Engine) -> str:
    """A cache key for the database behind a connection or engine (its URL, password hidden)."""
    engine = bind.engine if isinstance(bind, Connection) else bind
    return engine.url.render_as_string(hide_password=True)


def has_table(conn: Connection, table: str) -> bool:
    """True when ``table`` exists on the search path."""
    return bool(conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar_one())


def has_column(conn: Connection, table: str, column: str) -> bool:
    """True when ``table`` has a column ``column``."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
                "WHERE table_name = :t AND column_name = :c)"
            ),
            {"t": table, "c": column},
        ).scalar_one()
    )
