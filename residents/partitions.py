"""The houses table's partitions (migration 0018_scale_partitions): one per district, and a DEFAULT one.

`house_info` is ``PARTITION BY RANGE (address_code)``; a district's houses are the codes beginning with its six
digits, the range ``[DDDDDD, DDDDDD+1)`` (docs/address-code.md). A district that had no partition when the
migration ran (the database was empty, or the district was added later) gets its own from
:func:`ensure_partitions`: any of its rows in `house_info_default` are moved into the new table and the table
attached, in the caller's transaction. Every writer of houses calls it before writing — the bulk ones
(`importer.import_rows`, `service.load_synthetic`) for all their districts, `service.record_house` (a single
house through the API) for its address's — so no house of a district is left in the default partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

DISTRICT = re.compile(r"[0-9]{6}")


def district_of(code: str) -> str | None:
    """The district (first six digits) of a standard-address code, or None for something else."""
    head = code[:6]
    return head if DISTRICT.fullmatch(head) else None


def code_range(district: str) -> tuple[str, str]:
    """The half-open code range ``[lo, hi)`` of a district's addresses: '310101' → ('310101', '310102')."""
    if not DISTRICT.fullmatch(district):
        raise ValueError(district)
    return district, str(int(district) + 1).zfill(6)


def is_partitioned(conn: Connection) -> bool:
    """Whether `house_info` is the partitioned table of migration 0018."""
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('house_info'))")).scalar())


def partitions(conn: Connection) -> dict[str, str]:
    """The partitions of `house_info`: table name → its bound (``FOR VALUES FROM (…) TO (…)`` or ``DEFAULT``)."""
    rows = conn.execute(text("""SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('house_info') ORDER BY 1"""))
    return {name: bound for name, bound in rows}


def _missing(conn: Connection, districts: list[str]) -> bool:
    """Whether `house_info` is partitioned and one of ``districts`` has no partition of it."""
    return bool(conn.execute(text("""SELECT EXISTS (SELECT 1 FROM pg_partitioned_table
            WHERE partrelid = to_regclass('house_info'))
        AND EXISTS (SELECT 1 FROM unnest(CAST(:names AS text[])) AS n(name) WHERE NOT EXISTS (
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass('house_info') AND c.relname = n.name))"""),
        {"names": [f"house_info_d{d}" for d in districts]}).scalar())


def ensure_partitions(conn: Connection, districts: Iterable[str]) -> list[str]:
    """Give each district its own partition of `house_info` if it has none; returns the tables made.

    A district's rows already in the default partition move into the new one (same transaction), then the
    table is attached (PostgreSQL checks the default holds no row of the range). Nothing happens when the
    table is not partitioned. Takes a lock on the default partition only while a partition is being made."""
    wanted = sorted({d for d in districts if DISTRICT.fullmatch(d)})
    if not wanted or not _missing(conn, wanted):  # one catalogue query on the common path (a single write)
        return []
    # one maker at a time (two writers of a new district would both try to create its table): the second
    # waits here until the first commits, then finds the table made and goes on
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('shequ house_info partitions'))"))
    existing = set(partitions(conn))
    made = []
    for d in wanted:
        name = f"house_info_d{d}"
        if name in existing:
            continue
        lo, hi = code_range(d)
        conn.execute(text(f"CREATE TABLE {name} (LIKE house_info INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        if "house_info_default" in existing:
            conn.execute(text(f"""WITH moved AS (DELETE FROM house_info_default
                WHERE address_code >= :lo AND address_code < :hi RETURNING *) INSERT INTO {name} SELECT * FROM moved"""),
                         {"lo": lo, "hi": hi})
        conn.execute(text(f"ALTER TABLE house_info ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')"))
        made.append(name)
    return made
