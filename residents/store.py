"""SQL of the residents package (tables of migration 0011_residents). Bound parameters only.

Every function takes a connection already inside a transaction; the caller owns the unit of work.
Versioned tables (person, house_info, org_unit): the current row has ``valid_to IS NULL``; a change closes
it (``close_*``) and inserts the next version in the same transaction.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .records import House, Person, Residence, Unit

_PERSON_COLS = [f.name for f in fields(Person)]
_HOUSE_COLS = [f.name for f in fields(House)]
_UNIT_COLS = [f.name for f in fields(Unit)]
_RESIDENCE_COLS = [f.name for f in fields(Residence)]


def _person(row: Any) -> Person:
    return Person(**{k: row[k] for k in _PERSON_COLS})


def _house(row: Any) -> House:
    out = House(**{k: row[k] for k in _HOUSE_COLS})
    out.floor_area = float(out.floor_area) if out.floor_area is not None else None
    return out


def _unit(row: Any) -> Unit:
    return Unit(**{k: row[k] for k in _UNIT_COLS})


def _residence(row: Any) -> Residence:
    return Residence(**{k: row[k] for k in _RESIDENCE_COLS})


def _insert(conn: Connection, table: str, values: dict[str, Any], returning: str) -> Any:
    cols = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    return conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING {returning}"),
                        values).mappings().one()


# ---- addresses (read only: the registry owns them) ----

def address_state(conn: Connection, code: str) -> dict[str, Any] | None:
    """Level and status of an address's current (or last) version, with its full text; None if unknown."""
    row = conn.execute(text(
        "SELECT code, level, status, full_text, valid_to IS NULL AS current FROM standard_address "
        "WHERE code = :code ORDER BY valid_to IS NULL DESC, version DESC LIMIT 1"), {"code": code}).mappings().first()
    return dict(row) if row else None


# ---- people ----

def next_person_id(conn: Connection) -> int:
    """A fresh stable person id."""
    return int(conn.execute(text("SELECT nextval('person_id_seq')")).scalar_one())


def person(conn: Connection, person_id: int, lock: bool = False) -> Person | None:
    """The current version of a person, or None."""
    sql = f"SELECT {', '.join(_PERSON_COLS)} FROM person WHERE id = :id AND valid_to IS NULL"
    row = conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": person_id}).mappings().first()
    return _person(row) if row else None


def person_history(conn: Connection, person_id: int) -> list[Person]:
    """Every version of a person, oldest first."""
    rows = conn.execute(text(f"SELECT {', '.join(_PERSON_COLS)} FROM person WHERE id = :id ORDER BY version"),
                        {"id": person_id}).mappings()
    return [_person(r) for r in rows]


def person_by_document(conn: Connection, id_type: str, id_number: str) -> int | None:
    """The id of the current person holding this document, or None."""
    return conn.execute(text("SELECT id FROM person WHERE id_type = :t AND id_number = :n AND valid_to IS NULL"),
                        {"t": id_type, "n": id_number}).scalar()


def insert_person(conn: Connection, p: Person) -> Person:
    """Insert one version of a person (``p.id`` set); the stored row."""
    values = {k: getattr(p, k) for k in _PERSON_COLS if k not in ("valid_from", "valid_to")}
    return _person(_insert(conn, "person", values, ", ".join(_PERSON_COLS)))


def close_person(conn: Connection, person_id: int) -> None:
    """End the current version of a person."""
    conn.execute(text("UPDATE person SET valid_to = now() WHERE id = :id AND valid_to IS NULL"), {"id": person_id})


# ---- residences ----

def current_residence(conn: Connection, person_id: int, lock: bool = False) -> Residence | None:
    """Where a person lives now, or None."""
    sql = f"SELECT {', '.join(_RESIDENCE_COLS)} FROM residence WHERE person_id = :p AND to_date IS NULL"
    row = conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"p": person_id}).mappings().first()
    return _residence(row) if row else None


def residences(conn: Connection, person_id: int) -> list[Residence]:
    """Every residence of a person, oldest first."""
    rows = conn.execute(text(f"SELECT {', '.join(_RESIDENCE_COLS)} FROM residence WHERE person_id = :p "
                             "ORDER BY from_date, id"), {"p": person_id}).mappings()
    return [_residence(r) for r in rows]


def open_residence(conn: Connection, res: Residence) -> Residence:
    """Insert an open residence."""
    values = {k: getattr(res, k) for k in _RESIDENCE_COLS if k != "id"}
    return _residence(_insert(conn, "residence", values, ", ".join(_RESIDENCE_COLS)))


def close_residence(conn: Connection, residence_id: int, to_date: date, closed_by: str) -> None:
    """Close a residence on ``to_date``."""
    conn.execute(text("UPDATE residence SET to_date = :d, closed_by = :by WHERE id = :id"),
                 {"d": to_date, "by": closed_by, "id": residence_id})


_BELOW = """WITH RECURSIVE tree AS (
    SELECT code FROM standard_address WHERE code = :code AND valid_to IS NULL
    UNION SELECT a.code FROM standard_address a JOIN tree t ON a.parent_code = t.code AND a.valid_to IS NULL)"""


def people_at(conn: Connection, code: str, below: bool = False, limit: int = 500) -> list[tuple[Person, Residence]]:
    """People living at an address now (``below``: also at its units, floors and rooms), by address then id."""
    where = "r.address_code IN (SELECT code FROM tree)" if below else "r.address_code = :code"
    pcols = ", ".join(f"p.{c}" for c in _PERSON_COLS)
    rcols = ", ".join(f"r.{c} AS r_{c}" for c in _RESIDENCE_COLS)
    sql = (f"{_BELOW if below else ''} SELECT {pcols}, {rcols} FROM residence r JOIN person p ON p.id = r.person_id "
           f"AND p.valid_to IS NULL WHERE r.to_date IS NULL AND {where} ORDER BY r.address_code, p.id LIMIT :n")
    out = []
    for row in conn.execute(text(sql), {"code": code, "n": limit}).mappings():
        out.append((_person(row), Residence(**{c: row[f"r_{c}"] for c in _RESIDENCE_COLS})))
    return out


# ---- houses ----

def house(conn: Connection, code: str, lock: bool = False) -> House | None:
    """The current house record of an address, or None."""
    sql = f"SELECT {', '.join(_HOUSE_COLS)} FROM house_info WHERE address_code = :c AND valid_to IS NULL"
    row = conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"c": code}).mappings().first()
    return _house(row) if row else None


def house_history(conn: Connection, code: str) -> list[House]:
    """Every version of an address's house record, oldest first."""
    rows = conn.execute(text(f"SELECT {', '.join(_HOUSE_COLS)} FROM house_info WHERE address_code = :c "
                             "ORDER BY version"), {"c": code}).mappings()
    return [_house(r) for r in rows]


def insert_house(conn: Connection, h: House) -> House:
    """Insert one version of a house record."""
    values = {k: getattr(h, k) for k in _HOUSE_COLS if k not in ("valid_from", "valid_to")}
    return _house(_insert(conn, "house_info", values, ", ".join(_HOUSE_COLS)))


def close_house(conn: Connection, code: str) -> None:
    """End the current version of an address's house record."""
    conn.execute(text("UPDATE house_info SET valid_to = now() WHERE address_code = :c AND valid_to IS NULL"),
                 {"c": code})


# ---- units ----

def next_unit_id(conn: Connection) -> int:
    """A fresh stable unit id."""
    return int(conn.execute(text("SELECT nextval('org_unit_id_seq')")).scalar_one())


def unit(conn: Connection, unit_id: int, lock: bool = False) -> Unit | None:
    """The current version of a unit, or None."""
    sql = f"SELECT {', '.join(_UNIT_COLS)} FROM org_unit WHERE id = :id AND valid_to IS NULL"
    row = conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": unit_id}).mappings().first()
    return _unit(row) if row else None


def unit_history(conn: Connection, unit_id: int) -> list[Unit]:
    """Every version of a unit, oldest first."""
    rows = conn.execute(text(f"SELECT {', '.join(_UNIT_COLS)} FROM org_unit WHERE id = :id ORDER BY version"),
                        {"id": unit_id}).mappings()
    return [_unit(r) for r in rows]


def unit_by_credit_code(conn: Connection, credit_code: str) -> int | None:
    """The id of the current unit with this credit code, or None."""
    return conn.execute(text("SELECT id FROM org_unit WHERE credit_code = :c AND valid_to IS NULL"),
                        {"c": credit_code}).scalar()


def units_at(conn: Connection, code: str, limit: int = 500) -> list[Unit]:
    """Current units at an address."""
    rows = conn.execute(text(f"SELECT {', '.join(_UNIT_COLS)} FROM org_unit WHERE address_code = :c "
                             "AND valid_to IS NULL ORDER BY id LIMIT :n"), {"c": code, "n": limit}).mappings()
    return [_unit(r) for r in rows]


def insert_unit(conn: Connection, u: Unit) -> Unit:
    """Insert one version of a unit (``u.id`` set)."""
    values = {k: getattr(u, k) for k in _UNIT_COLS if k not in ("valid_from", "valid_to")}
    return _unit(_insert(conn, "org_unit", values, ", ".join(_UNIT_COLS)))


def close_unit(conn: Connection, unit_id: int) -> None:
    """End the current version of a unit."""
    conn.execute(text("UPDATE org_unit SET valid_to = now() WHERE id = :id AND valid_to IS NULL"), {"id": unit_id})


# ---- key groups ----

def key_group_kinds(conn: Connection) -> list[dict[str, Any]]:
    """The editable table of key-group kinds, in display order."""
    rows = conn.execute(text("SELECT code, name, name_en, sort, active FROM key_group_kind ORDER BY sort, code"))
    return [dict(r) for r in rows.mappings()]


def key_groups_of(conn: Connection, person_id: int, current_only: bool = True) -> list[dict[str, Any]]:
    """A person's key-group flags (current ones, or every flag with its dates)."""
    sql = ("SELECT g.kind, k.name, g.from_date, g.to_date, g.note FROM person_key_group g "
           "JOIN key_group_kind k ON k.code = g.kind WHERE g.person_id = :p")
    sql += " AND g.to_date IS NULL" if current_only else ""
    rows = conn.execute(text(sql + " ORDER BY g.from_date, g.id"), {"p": person_id}).mappings()
    return [dict(r) for r in rows]


def key_group_kind_exists(conn: Connection, kind: str) -> bool:
    """True for an active kind code."""
    return bool(conn.execute(text("SELECT 1 FROM key_group_kind WHERE code = :k AND active"), {"k": kind}).scalar())


def flag_key_group(conn: Connection, person_id: int, kind: str, from_date: date, note: str | None, by: str,
                   source: str = "grid") -> bool:
    """Flag a person in a key group from ``from_date``; False when already flagged."""
    row = conn.execute(text(
        "INSERT INTO person_key_group (person_id, kind, from_date, note, changed_by, source) "
        "VALUES (:p, :k, :d, :note, :by, :src) ON CONFLICT (person_id, kind) WHERE to_date IS NULL DO NOTHING "
        "RETURNING id"), {"p": person_id, "k": kind, "d": from_date, "note": note, "by": by, "src": source}).first()
    return row is not None


def unflag_key_group(conn: Connection, person_id: int, kind: str, to_date: date) -> bool:
    """End a person's current flag in a key group on ``to_date``; False when there was none."""
    res = conn.execute(text("UPDATE person_key_group SET to_date = GREATEST(:d, from_date) WHERE person_id = :p "
                            "AND kind = :k AND to_date IS NULL"), {"p": person_id, "k": kind, "d": to_date})
    return bool(res.rowcount)


# ---- synthetic demo data ----

_DWELLINGS = """SELECT a.code, a.level, CASE WHEN a.level = 'room' THEN 1
        ELSE GREATEST(1, round(b.households_est))::int END AS households
    FROM standard_address a JOIN building b ON b.id = a.building_id
    WHERE a.valid_to IS NULL AND a.status = 'active' AND a.level IN ('house_number', 'building', 'room')
      AND b.households_est > 0 AND (CAST(:community AS text) IS NULL OR a.community_code = :community)
      AND NOT EXISTS (SELECT 1 FROM standard_address c WHERE c.parent_code = a.code AND c.valid_to IS NULL
                      AND c.status = 'active')
    ORDER BY a.code"""


def dwellings(conn: Connection, community: str | None = None) -> list[tuple[str, str, int]]:
    """(address code, level, households) of every place people live: rooms, and buildings / house numbers
    without active children, with their building's household estimate (a room: one household)."""
    rows = conn.execute(text(_DWELLINGS), {"community": community})
    return [(r.code, r.level, int(r.households)) for r in rows]


def synthetic_done(conn: Connection, codes: list[str]) -> set[str]:
    """The addresses among ``codes`` that already carry a synthetic house record."""
    rows = conn.execute(text("SELECT DISTINCT address_code FROM house_info WHERE source = 'synthetic' "
                             "AND address_code = ANY(:c)"), {"c": codes})
    return {r.address_code for r in rows}


def existing_documents(conn: Connection, numbers: list[str]) -> set[str]:
    """The document numbers among ``numbers`` held by a current person."""
    rows = conn.execute(text("SELECT p.id_number FROM unnest(CAST(:n AS text[])) AS x(n) "
                             "JOIN person p ON p.id_number = x.n AND p.valid_to IS NULL"), {"n": numbers})
    return {r.id_number for r in rows}


def existing_credit_codes(conn: Connection, codes: list[str]) -> set[str]:
    """The credit codes among ``codes`` held by a current unit."""
    rows = conn.execute(text("SELECT credit_code FROM org_unit WHERE valid_to IS NULL AND credit_code = ANY(:c)"),
                        {"c": codes})
    return {r.credit_code for r in rows}


def take_ids(conn: Connection, sequence: str, n: int) -> list[int]:
    """``n`` fresh ids of ``person_id_seq`` or ``org_unit_id_seq``."""
    if sequence not in ("person_id_seq", "org_unit_id_seq"):
        raise ValueError(sequence)
    return [int(x) for (x,) in conn.execute(text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"),
                                            {"n": n})]


def bulk_insert(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of one shape (executemany) into one of the residents tables."""
    if not rows:
        return
    if table not in ("person", "residence", "house_info", "org_unit", "person_key_group"):
        raise ValueError(table)
    cols = list(rows[0])
    conn.execute(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"), rows)
