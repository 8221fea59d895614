"""The houses table partitioned by district (migration 0018_scale_partitions, `residents.partitions`).

On the session's PostGIS with the demo city: house records at real demo addresses (rooms, in the demo's
districts) plus one at a code of a district no partition exists for. Each test runs in a transaction rolled
back afterwards (the migration's own downgrade / upgrade functions included), so the later tests see the
table as it was."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from residents import partitions, store
from residents.records import House

_PATH = Path(__file__).resolve().parents[2] / "gis_api/migrations/versions/0018_scale_partitions.py"
_SPEC = importlib.util.spec_from_file_location("migration_0018", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
MIGRATION = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(MIGRATION)
NEW_DISTRICT = "659999"  # no admin unit has it: its houses go to the default partition until it gets its own

CONSTRAINTS_SQL = """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid = to_regclass('house_info') AND conname <> 'house_info_pkey' ORDER BY 1"""
ROWS_SQL = """SELECT row_id, address_code, use, floor_area, version, source, valid_to IS NULL AS current, changed_by
    FROM house_info ORDER BY row_id"""


def _run(conn, step: str) -> None:
    """The migration's ``upgrade`` / ``downgrade`` on this connection (inside its transaction)."""
    with Operations.context(MigrationContext.configure(conn)):
        getattr(MIGRATION, step)()


def _where(conn, code: str) -> list[str]:
    """The partitions holding rows of ``code``."""
    return [r[0] for r in conn.execute(text(
        "SELECT DISTINCT tableoid::regclass::text FROM house_info WHERE address_code = :c"), {"c": code})]


@pytest.fixture
def houses(rolled_back):
    """(connection, codes): house records at 40 demo rooms spread over the demo's districts (every fourth
    with a closed earlier version) and one at a made-up code of ``NEW_DISTRICT``; partitions ensured for the
    demo's districts as the residents' writers do."""
    conn = rolled_back
    codes = [c for (c,) in conn.execute(text("""SELECT code FROM (SELECT code, row_number() OVER
        (PARTITION BY left(code, 6) ORDER BY code) AS k FROM standard_address WHERE level = 'room'
        AND valid_to IS NULL AND status = 'active') x WHERE k <= 20 ORDER BY code LIMIT 40"""))]
    assert len(codes) >= 10, "the demo has room-level addresses"
    codes.append(NEW_DISTRICT + "00001000010000")
    partitions.ensure_partitions(conn, {c[:6] for c in codes[:-1]})
    rows = []
    for i, code in enumerate(codes):
        if i % 4 == 0:
            rows.append({"address_code": code, "use": "出租", "version": 1, "valid_to": "2025-01-01T00:00:00Z"})
        rows.append({"address_code": code, "use": "自住", "version": 2 if i % 4 == 0 else 1, "valid_to": None})
    conn.execute(text("""INSERT INTO house_info (address_code, use, floor_area, version, source, valid_to,
        changed_by) VALUES (:address_code, :use, 88.5, :version, 'grid', CAST(:valid_to AS timestamptz),
        'test_house_partitions')"""), rows)
    return conn, codes


def test_the_table_is_partitioned_by_district_with_a_default(houses):
    conn, codes = houses
    assert partitions.is_partitioned(conn)
    parts = partitions.partitions(conn)
    assert parts["house_info_default"] == "DEFAULT"
    for code in codes[:-1]:
        lo, hi = partitions.code_range(code[:6])
        assert parts[f"house_info_d{code[:6]}"] == f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
        assert _where(conn, code) == [f"house_info_d{code[:6]}"]
    assert _where(conn, codes[-1]) == ["house_info_default"]


def test_migration_down_and_up_keeps_every_row_and_constraint(houses):
    conn, codes = houses
    before_rows = conn.execute(text(ROWS_SQL)).all()
    before_constraints = conn.execute(text(CONSTRAINTS_SQL)).all()
    assert len(before_rows) == len(codes) + len(codes[::4])
    next_before = conn.execute(text("SELECT pg_get_serial_sequence('house_info', 'row_id')")).scalar()

    _run(conn, "downgrade")
    assert not partitions.is_partitioned(conn)
    assert conn.execute(text(ROWS_SQL)).all() == before_rows
    assert conn.execute(text(CONSTRAINTS_SQL)).all() == before_constraints
    assert conn.execute(text("SELECT to_regclass('house_info_default')")).scalar() is None

    _run(conn, "upgrade")
    assert partitions.is_partitioned(conn)
    assert conn.execute(text(ROWS_SQL)).all() == before_rows
    assert conn.execute(text(CONSTRAINTS_SQL)).all() == before_constraints
    assert conn.execute(text("SELECT pg_get_serial_sequence('house_info', 'row_id')")).scalar() == next_before
    # every district of the rows got its partition from the upgrade (the made-up one too), none in default
    for code in codes:
        assert _where(conn, code) == [f"house_info_d{code[:6]}"]
    assert conn.execute(text("SELECT count(*) FROM house_info_default")).scalar() == 0
    # the identity continues after the copied row ids
    store.close_house(conn, codes[1])
    store.insert_house(conn, House(address_code=codes[1], use="空置", version=9, changed_by="t",
                                   valid_to=None))
    made = conn.execute(text("SELECT row_id FROM house_info WHERE address_code = :c AND version = 9"),
                        {"c": codes[1]}).scalar_one()
    assert made == max(r.row_id for r in before_rows) + 1


@pytest.mark.parametrize("version,valid_to", [(1, None), (7, None)], ids=["same version", "second current"])
def test_uniqueness_per_version_and_current_still_enforced(houses, version, valid_to):
    conn, codes = houses
    code = codes[1]  # version 1, current, in its district's partition
    savepoint = conn.begin_nested()
    with pytest.raises(IntegrityError) as err:
        conn.execute(text("INSERT INTO house_info (address_code, use, version, valid_to, changed_by) "
                          "VALUES (:c, '自住', :v, :t, 't')"), {"c": code, "v": version, "t": valid_to})
    savepoint.rollback()
    assert "duplicate key value violates unique constraint" in str(err.value)


def test_a_new_district_moves_from_the_default_into_its_own_partition(houses):
    conn, codes = houses
    code = codes[-1]
    assert _where(conn, code) == ["house_info_default"]
    before = conn.execute(text(ROWS_SQL)).all()
    assert partitions.ensure_partitions(conn, [NEW_DISTRICT, NEW_DISTRICT]) == [f"house_info_d{NEW_DISTRICT}"]
    assert partitions.ensure_partitions(conn, [NEW_DISTRICT]) == []  # idempotent
    assert _where(conn, code) == [f"house_info_d{NEW_DISTRICT}"]
    assert conn.execute(text(ROWS_SQL)).all() == before
    assert conn.execute(text("SELECT count(*) FROM house_info_default WHERE address_code LIKE :p"),
                        {"p": NEW_DISTRICT + "%"}).scalar() == 0
    # the new partition enforces the keys like the others and the app writes through the parent
    savepoint = conn.begin_nested()
    with pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO house_info (address_code, use, version, changed_by) VALUES (:c, '自住', 1, 't')"),
                     {"c": code})
    savepoint.rollback()
    versions = [h.version for h in store.house_history(conn, code)]
    store.close_house(conn, code)
    store.insert_house(conn, House(address_code=code, use="出租", version=versions[-1] + 1, changed_by="t"))
    assert [h.version for h in store.house_history(conn, code)] == [*versions, versions[-1] + 1]
    assert store.house(conn, code).use == "出租"


def _scanned(conn, sql: str, params: dict) -> set[str]:
    plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql), params).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    found: set[str] = set()

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)
    walk(plan[0]["Plan"])
    return found


def test_one_district_queries_are_pruned_to_its_partition(houses):
    conn, codes = houses
    code = codes[1]
    own = {f"house_info_d{code[:6]}"}
    assert len(partitions.partitions(conn)) > 2
    cols = ", ".join(store._HOUSE_COLS)
    # the app's own statements (residents.store.house / house_history, reconcile_store's = ANY)
    assert _scanned(conn, f"SELECT {cols} FROM house_info WHERE address_code = :c AND valid_to IS NULL",
                    {"c": code}) == own
    assert _scanned(conn, f"SELECT {cols} FROM house_info WHERE address_code = :c ORDER BY version",
                    {"c": code}) == own
    same = [c for c in codes if c[:6] == code[:6]]
    assert _scanned(conn, "SELECT address_code, use FROM house_info WHERE valid_to IS NULL "
                    "AND address_code = ANY(:codes)", {"codes": same}) == own
    lo, hi = partitions.code_range(code[:6])
    assert _scanned(conn, "SELECT address_code, use FROM house_info WHERE address_code >= :lo "
                    "AND address_code < :hi AND valid_to IS NULL", {"lo": lo, "hi": hi}) == own
    # without the key every partition is read
    assert len(_scanned(conn, "SELECT count(*) FROM house_info WHERE use = '自住'", {})) == len(
        partitions.partitions(conn))


def test_a_house_import_for_a_district_without_partition_creates_it(houses):
    """The bulk import gives the district its partition before writing (its rows leave the default)."""
    from residents import importer

    conn, codes = houses
    district = codes[0][:6]
    name = f"house_info_d{district}"
    # the district as a later city would meet it: no partition, its rows in the default one
    conn.execute(text(f"ALTER TABLE house_info DETACH PARTITION {name}"))
    conn.execute(text(f"INSERT INTO house_info_default SELECT * FROM {name}"))
    conn.execute(text(f"DROP TABLE {name}"))
    assert _where(conn, codes[0]) == ["house_info_default"]
    room = conn.execute(text("""SELECT code FROM standard_address WHERE level = 'room' AND valid_to IS NULL
        AND status = 'active' AND left(code, 6) = :d AND code <> ALL(:taken) ORDER BY code LIMIT 1"""),
                        {"d": district, "taken": codes}).scalar_one()
    report = importer.import_rows(conn, "houses", [importer.Row(2, {"address_code": room, "use": "出租"})],
                                  "test_house_partitions")
    assert report["errors"] == [] and report["written"] == [f"house:{room}"]
    assert name in partitions.partitions(conn)
    assert _where(conn, room) == [name] and _where(conn, codes[0]) == [name]


def _detach_into_default(conn, district: str) -> str:
    """The district as a later city meets it: no partition of its own, its rows in the default one."""
    name = f"house_info_d{district}"
    conn.execute(text(f"ALTER TABLE house_info DETACH PARTITION {name}"))
    conn.execute(text(f"INSERT INTO house_info_default SELECT * FROM {name}"))
    conn.execute(text(f"DROP TABLE {name}"))
    return name


def test_a_single_house_write_gives_its_district_a_partition(houses):
    """`service.record_house` (the API's single write): the district gets its partition before the house is
    written, and the district's rows already in the default partition move with it."""
    from residents import service

    conn, codes = houses
    district = codes[0][:6]
    name = _detach_into_default(conn, district)
    assert _where(conn, codes[0]) == ["house_info_default"]
    room = conn.execute(text("""SELECT code FROM standard_address WHERE level = 'room' AND valid_to IS NULL
        AND status = 'active' AND left(code, 6) = :d AND code <> ALL(:taken) ORDER BY code LIMIT 1"""),
                        {"d": district, "taken": codes}).scalar_one()
    before = len(partitions.partitions(conn))
    h = service.record_house(conn, room, {"use": "出租", "tenant_count": 2}, "test_house_partitions")
    assert h.version == 1 and len(partitions.partitions(conn)) == before + 1
    assert _where(conn, room) == [name] and _where(conn, codes[0]) == [name]
    assert conn.execute(text("SELECT count(*) FROM house_info_default WHERE address_code >= :lo "
                             "AND address_code < :hi"), dict(zip(("lo", "hi"), partitions.code_range(district),
                                                                 strict=True))).scalar() == 0
    # the next single write of the district finds its partition: nothing made, nothing moved
    h2 = service.record_house(conn, room, {"use": "自住"}, "test_house_partitions")
    assert h2.version == 2 and len(partitions.partitions(conn)) == before + 1
    assert [x.version for x in store.house_history(conn, room)] == [1, 2] and _where(conn, room) == [name]
    # an address that does not exist makes no partition
    from residents.errors import AddressNotFound

    with pytest.raises(AddressNotFound):
        service.record_house(conn, "659997" + room[6:], {"use": "自住"}, "test_house_partitions")
    assert "house_info_d659997" not in partitions.partitions(conn)


TWIN_DISTRICT = "659998"  # made up: two of its rooms are written at once by two transactions
WHO = "test_house_partitions_concurrent"


def _clone_rooms(conn, n: int) -> list[str]:
    """``n`` active rooms of a made-up district: copies of demo rooms with the district part of the code
    (and their text) changed."""
    made = []
    for (src,) in conn.execute(text("""SELECT code FROM standard_address WHERE level = 'room'
            AND valid_to IS NULL AND status = 'active' ORDER BY code LIMIT :n"""), {"n": n}).all():
        code = TWIN_DISTRICT + src[6:]
        conn.execute(text("""INSERT INTO standard_address (code, version, level, parent_code, district_code,
            township_code, community_code, components, full_text, normalized_text, geom, source, status,
            changed_by, change_reason) SELECT :code, 1, level, parent_code, district_code, township_code,
            community_code, components, full_text || :tag, normalized_text || :tag, geom, source, 'active',
            :who, 'issue 14 test' FROM standard_address WHERE code = :src AND valid_to IS NULL"""),
                     {"code": code, "src": src, "tag": f"#{code}", "who": WHO})
        made.append(code)
    return made


def _drop_twins(engine) -> None:
    name = f"house_info_d{TWIN_DISTRICT}"
    lo, hi = partitions.code_range(TWIN_DISTRICT)
    with engine.begin() as conn:
        if name in partitions.partitions(conn):
            conn.execute(text(f"ALTER TABLE house_info DETACH PARTITION {name}"))
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(text("DELETE FROM house_info WHERE address_code >= :lo AND address_code < :hi"),
                     {"lo": lo, "hi": hi})
        conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": WHO})


def test_two_first_single_writes_of_a_new_district_at_once_make_one_partition(engine):
    """Two transactions write the first houses of a district with no partition at the same time: the second
    waits for the first to commit (the partition makers' lock), then finds the partition and writes into
    it — no error, one partition, nothing in the default one."""
    import threading

    from residents import service

    _drop_twins(engine)
    with engine.begin() as conn:
        rooms = _clone_rooms(conn, 2)
    assert len(rooms) == 2
    name = f"house_info_d{TWIN_DISTRICT}"
    outcome: dict = {}
    first = engine.connect()
    worker = None
    try:
        tx = first.begin()
        assert service.record_house(first, rooms[0], {"use": "自住"}, WHO).version == 1
        assert name in partitions.partitions(first)  # made, not yet committed

        def second() -> None:
            try:
                with engine.begin() as conn:
                    outcome["house"] = service.record_house(conn, rooms[1], {"use": "出租"}, WHO)
                    outcome["partitions"] = partitions.partitions(conn)
            except Exception as exc:  # reported below
                outcome["error"] = exc

        worker = threading.Thread(target=second)
        worker.start()
        with engine.connect() as watch:  # the second waits on the partition makers' lock, held by the first
            for _ in range(600):
                waiting = watch.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                             "AND NOT granted")).scalar()
                if waiting or not worker.is_alive():
                    break
                watch.execute(text("SELECT pg_sleep(0.05)"))
        assert waiting == 1 and worker.is_alive() and not outcome
        tx.commit()
        first.close()
        worker.join(60)
        assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
        assert outcome["house"].version == 1
        assert [p for p in outcome["partitions"] if p.startswith(name)] == [name]
        with engine.connect() as conn:
            assert [p for p in partitions.partitions(conn) if TWIN_DISTRICT in p] == [name]
            assert _where(conn, rooms[0]) == [name] and _where(conn, rooms[1]) == [name]
            assert conn.execute(text("SELECT count(*) FROM house_info_default WHERE address_code LIKE :p"),
                                {"p": TWIN_DISTRICT + "%"}).scalar() == 0
    finally:
        first.close()  # rolls back whatever is left open, so that the second goes on and the cleanup runs
        if worker is not None:
            worker.join(60)
        _drop_twins(engine)
