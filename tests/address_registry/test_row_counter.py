"""The trigger-kept row count of `standard_address` (migration 0017_scale_row_counter, issue 14) equals
count(*) after every kind of write — single inserts, a multi-row insert, COPY, deletes, TRUNCATE — inside
the writing transaction and after a rollback, and the geocoder's stamp reads it."""

from __future__ import annotations

from sqlalchemy import text

from address_registry import store

COUNT = text("SELECT count(*) FROM standard_address")
COUNTER = text("SELECT CAST(coalesce(sum(n), 0) AS bigint) FROM standard_address_rows")
COPY_COLUMNS = ("code", "version", "level", "components", "full_text", "normalized_text", "source", "status", "changed_by",
                "change_reason")


def _both(conn) -> tuple[int, int]:
    return conn.execute(COUNT).scalar_one(), conn.execute(COUNTER).scalar_one()


def _row(i: int) -> dict:
    return {"code": f"9{i:011d}", "components": '{"road": "计数测试路"}', "text": f"计数测试路{i}"}


INSERT = text("""INSERT INTO standard_address (code, version, level, components, full_text, normalized_text,
    source, status, changed_by, change_reason) VALUES (:code, 1, 'road', CAST(:components AS jsonb), :text, :text,
    'manual', 'active', '计数测试', '计数测试')""")


def test_the_counter_is_the_row_count_after_every_kind_of_write(engine, registry, rolled_back):
    conn = rolled_back
    before, counted = _both(conn)
    assert before == counted and before > 8000  # the demo registry's build (COPY and inserts) was counted
    stamp_before = store.stamp(conn)
    assert stamp_before[2] == before
    conn.execute(INSERT, _row(1))
    conn.execute(INSERT, [_row(i) for i in range(2, 6)])  # executemany
    conn.execute(text("""INSERT INTO standard_address (code, version, level, components, full_text, normalized_text,
        source, status, changed_by, change_reason) SELECT '8' || lpad(g::text, 11, '0'), 1, 'road', '{}'::jsonb,
        'x' || g, 'x' || g, 'manual', 'active', '计数测试', '计数测试' FROM generate_series(1, 300) g"""))
    assert _both(conn) == (before + 305, before + 305)
    raw = conn.connection.driver_connection
    with raw.cursor().copy(f"COPY standard_address ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
        for i in range(7, 57):
            copy.write_row((f"9{i:011d}", 1, "road", '{"road": "计数测试路"}', f"计数测试路{i}", f"计数测试路{i}",
                            "manual", "active", "计数测试", "计数测试"))
    assert _both(conn) == (before + 355, before + 355)
    assert store.stamp(conn)[2] == before + 355
    conn.execute(text("UPDATE standard_address SET change_reason = '计数测试 改' WHERE changed_by = '计数测试'"))
    conn.execute(text("DELETE FROM standard_address WHERE code LIKE '8%' AND changed_by = '计数测试'"))
    assert _both(conn) == (before + 55, before + 55)
    conn.execute(text("DELETE FROM standard_address WHERE false"))  # a statement touching no row
    assert _both(conn) == (before + 55, before + 55)
    sp = conn.begin_nested()
    conn.execute(text("TRUNCATE standard_address CASCADE"))
    assert _both(conn) == (0, 0)
    sp.rollback()
    assert _both(conn) == (before + 55, before + 55)
    # other transactions never saw any of it; nor do they after the rollback (the fixture's)
    with engine.connect() as other:
        assert _both(other) == (before, before)


def test_a_rolled_back_write_leaves_the_counter(engine, registry):
    with engine.connect() as conn:
        before = _both(conn)
        conn.rollback()
        trans = conn.begin()
        conn.execute(INSERT, _row(99))
        assert _both(conn) == (before[0] + 1, before[1] + 1)
        trans.rollback()
        assert _both(conn) == before
