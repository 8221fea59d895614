"""Police–grid reconciliation with the database: import the police extract, run the comparison of a police
area, keep the mismatch tasks (one open task per mismatch; a re-run updates it, and closes as ``corrected``
the open tasks whose mismatch is gone), change a task's state with history.

The police extract (migration ``0015_yibiao_reconcile``) is its own source: rows go to `police_record`
under a `police_batch` of the police area; nothing is written to the grid's people, houses or units. The
latest batch of an area is its police side. Import is all or nothing: one bad row and nothing is stored
(the report lists every bad row: row, field, reason).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.errors import Conflict, InvalidInput, NotFound

from . import validate
from .errors import InvalidField
from .importer import Row, _prepare
from .reconcile import Mismatch, Outcome, compare
from .records import HOUSE_USES, REGISTRATIONS

RECORD_TYPES = {"person": "person", "人口": "person", "人员": "person", "实有人口": "person",
                "house": "house", "房屋": "house", "实有房屋": "house",
                "unit": "unit", "单位": "unit", "实有单位": "unit"}
STATES = ("open", "confirmed", "corrected", "dismissed")
KIND_TITLES = {"police_only": "公安有、网格未采集", "grid_only": "网格有、公安未登记", "different_address": "地址不一致",
               "field_conflict": "信息不一致", "vacant_occupied": "空置房屋有人居住",
               "unit_no_credit_code": "单位缺统一社会信用代码", "unit_not_in_police": "单位不在公安数据中"}

_AREA_ADDRESSES = text(
    "SELECT a.code, a.township_code, a.community_code, "
    "(SELECT g.code FROM grid g WHERE g.valid_to IS NULL AND g.level = 'grid' AND ST_Intersects(g.geom, a.geom) "
    " ORDER BY g.code LIMIT 1) AS grid_code "
    "FROM standard_address a JOIN police_area p ON p.code = :area AND ST_Intersects(p.geom, a.geom) "
    "WHERE a.valid_to IS NULL AND a.status = 'active'")


def police_area_exists(conn: Connection, code: str) -> bool:
    """True for a known police-station area code."""
    return conn.execute(text("SELECT 1 FROM police_area WHERE code = :c"), {"c": code}).first() is not None


def area_addresses(conn: Connection, area: str) -> dict[str, dict[str, Any]]:
    """Active addresses inside the police area: code → township, community and the grid holding it."""
    return {r["code"]: dict(r) for r in conn.execute(_AREA_ADDRESSES, {"area": area}).mappings()}


def _check_police_row(row: Row, values: dict[str, Any], inside: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The police record of a prepared row (problems noted on the row)."""
    kind = RECORD_TYPES.get(str(values.get("record_type", "")).strip().lower())
    code = values.get("address_code")
    if kind is None:
        row.fail("record_type", "记录类型应为 人口、房屋 或 单位 record_type must be person, house or unit")
    if code and code not in inside:
        row.fail("address_code", f"地址不存在、已注销或不在该派出所辖区 address {code} is unknown, retired or "
                                 "outside the police area")
    rec = {"record_type": kind, "address_code": code, "id_type": values.get("id_type") or "citizen_id",
           "id_number": None, "name": values.get("name"), "registration": values.get("registration"),
           "house_use": values.get("use"), "credit_code": None}
    try:
        if kind == "person":
            if not values.get("id_number"):
                raise InvalidField("id_number", "人口记录须有证件号码", "a person record needs its document number")
            rec["id_number"], _ = validate.document(str(rec["id_type"]), str(values["id_number"]))
            if rec["registration"] and rec["registration"] not in REGISTRATIONS:
                raise InvalidField("registration", f"应为 {'、'.join(REGISTRATIONS)} 之一", "unknown registration")
        elif kind == "unit":
            if not values.get("credit_code"):
                raise InvalidField("credit_code", "单位记录须有统一社会信用代码", "a unit record needs its credit code")
            rec["credit_code"] = validate.credit_code(str(values["credit_code"]))
        elif kind == "house" and rec["house_use"] not in HOUSE_USES:
            raise InvalidField("use", f"房屋用途应为 {'、'.join(HOUSE_USES)} 之一", "unknown house use")
    except InvalidField as exc:
        row.fail(exc.field, exc.message)
    return rec


def import_police(conn: Connection, area: str, rows: list[Row], imported_by: str,
                  filename: str | None = None) -> dict[str, Any]:
    """Store the police extract of ``area`` as a new batch, all or nothing; the report (``batch_id`` None
    and ``errors`` listed when a row failed: the caller rolls back — nothing was written anyway)."""
    if not police_area_exists(conn, area):
        raise NotFound(f"派出所辖区不存在 no police area {area!r}")
    inside = area_addresses(conn, area)
    seen: dict[tuple[Any, ...], int] = {}
    records = []
    for row in rows:
        values = _prepare(row, "police", {})
        rec = _check_police_row(row, values, inside)
        key = (rec["record_type"], rec["address_code"], rec["id_number"] or rec["credit_code"] or "house")
        if not row.errors and key in seen:
            row.fail("row", f"与第 {seen[key]} 行重复 duplicate of row {seen[key]}")
        seen.setdefault(key, row.row)
        records.append(rec)
    errors = [e for r in rows for e in r.errors]
    report: dict[str, Any] = {"police_area": area, "rows": len(rows), "errors": errors, "batch_id": None,
                              "counts": {t: sum(1 for r in records if r["record_type"] == t)
                                         for t in ("person", "house", "unit")}}
    if errors:
        return report
    batch = conn.execute(text("INSERT INTO police_batch (police_area, filename, rows, imported_by) "
                              "VALUES (:a, :f, :n, :b) RETURNING id"),
                         {"a": area, "f": filename, "n": len(rows), "b": imported_by}).scalar_one()
    conn.execute(text("INSERT INTO police_record (batch_id, record_type, address_code, id_type, id_number, name, "
                      "registration, house_use, credit_code) VALUES (:batch, :record_type, :address_code, :id_type, "
                      ":id_number, :name, :registration, :house_use, :credit_code)"),
                 [r | {"batch": batch} for r in records])
    report["batch_id"] = batch
    return report


def latest_batch(conn: Connection, area: str) -> int | None:
    """The latest police batch of an area."""
    return conn.execute(text("SELECT max(id) FROM police_batch WHERE police_area = :a"), {"a": area}).scalar()


def _grid_side(conn: Connection, codes: list[str], documents: list[str]) -> dict[str, Any]:
    """The grid's records in the area (and where it has the police extract's documents)."""
    people = conn.execute(text(
        "SELECT p.id AS person_id, p.id_type, p.id_number, p.name, p.registration, r.address_code FROM residence r "
        "JOIN person p ON p.id = r.person_id AND p.valid_to IS NULL WHERE r.to_date IS NULL "
        "AND r.address_code = ANY(:codes) AND p.source <> 'police' ORDER BY p.id"), {"codes": codes}).mappings()
    by_doc = conn.execute(text(
        "SELECT p.id AS person_id, p.id_type, p.id_number, p.name, p.registration, r.address_code FROM person p "
        "JOIN unnest(CAST(:docs AS text[])) d(n) ON d.n = p.id_number "
        "JOIN residence r ON r.person_id = p.id AND r.to_date IS NULL WHERE p.valid_to IS NULL"),
        {"docs": documents}).mappings()
    houses = conn.execute(text("SELECT address_code, use FROM house_info WHERE valid_to IS NULL "
                               "AND address_code = ANY(:codes)"), {"codes": codes})
    units = conn.execute(text("SELECT id AS unit_id, name, credit_code, address_code FROM org_unit "
                              "WHERE valid_to IS NULL AND address_code = ANY(:codes) ORDER BY id"),
                         {"codes": codes}).mappings()
    return {"people": [dict(r) for r in people], "by_doc": [dict(r) for r in by_doc],
            "houses": {c: u for c, u in houses}, "units": [dict(u) for u in units]}


def run(conn: Connection, area: str, actor: str) -> dict[str, Any]:
    """Compare the latest police batch of ``area`` with the grid's records there; keep the tasks. Counts of
    each outcome, of tasks opened, kept open and closed as corrected."""
    if not police_area_exists(conn, area):
        raise NotFound(f"派出所辖区不存在 no police area {area!r}")
    batch = latest_batch(conn, area)
    if batch is None:
        raise Conflict(f"该派出所辖区尚未导入公安数据 no police extract imported for {area}: import one first")
    inside = area_addresses(conn, area)
    police = [dict(r) for r in conn.execute(text(
        "SELECT record_type, address_code, id_type, id_number, name, registration, house_use, credit_code "
        "FROM police_record WHERE batch_id = :b ORDER BY id"), {"b": batch}).mappings()]
    grid = _grid_side(conn, sorted(inside), [p["id_number"] for p in police if p["id_number"]])
    credit = {c for (c,) in conn.execute(text(
        "SELECT credit_code FROM org_unit WHERE valid_to IS NULL AND credit_code = ANY(:c)"),
        {"c": [p["credit_code"] for p in police if p["credit_code"]]})}
    credit |= {u["credit_code"] for u in grid["units"] if u["credit_code"]}
    outcome = compare(police, grid["people"], grid["by_doc"], grid["houses"], grid["units"], credit)
    tasks = _sync_tasks(conn, area, batch, outcome, inside, actor)
    return {"police_area": area, "batch_id": batch, "addresses": len(inside), "counts": outcome.counts,
            "tasks": tasks}


def _sync_tasks(conn: Connection, area: str, batch: int, outcome: Outcome, inside: dict[str, dict[str, Any]],
                actor: str) -> dict[str, int]:
    """One open task per mismatch (new ones opened, existing ones refreshed); open tasks of the area whose
    mismatch is gone are closed as corrected. Each state change is a history event."""
    import json

    opened = kept = 0
    keys = set()
    for m in outcome.mismatches:
        where = inside.get(m.address_code, {})
        keys.add((m.kind, m.address_code, m.subject))
        row = conn.execute(text(
            "INSERT INTO reconcile_task (kind, address_code, subject, person_id, unit_id, detail, police_area, "
            "grid_code, community_code, township_code, batch_id) VALUES (:kind, :code, :subject, :pid, :uid, "
            "CAST(:detail AS jsonb), :area, :grid, :community, :township, :batch) "
            "ON CONFLICT (kind, address_code, subject) WHERE state = 'open' DO UPDATE SET detail = EXCLUDED.detail, "
            "batch_id = EXCLUDED.batch_id, person_id = EXCLUDED.person_id, unit_id = EXCLUDED.unit_id, "
            "updated_at = now() RETURNING id, (xmax = 0) AS inserted"),
            {"kind": m.kind, "code": m.address_code, "subject": m.subject, "pid": m.person_id, "uid": m.unit_id,
             "detail": json.dumps(m.detail, ensure_ascii=False, default=str), "area": area,
             "grid": where.get("grid_code"), "community": where.get("community_code"),
             "township": where.get("township_code"), "batch": batch}).mappings().one()
        if row["inserted"]:
            opened += 1
            _event(conn, row["id"], "open", "比对发现 found by reconciliation", actor)
        else:
            kept += 1
    closed = 0
    for t in conn.execute(text("SELECT id, kind, address_code, subject FROM reconcile_task WHERE police_area = :a "
                               "AND state = 'open' ORDER BY id"), {"a": area}).mappings().all():
        if (t["kind"], t["address_code"], t["subject"]) not in keys:
            _set_state(conn, t["id"], "corrected", "复核时两方已一致 consistent at re-run", actor)
            closed += 1
    return {"opened": opened, "still_open": kept, "closed": closed}


def _event(conn: Connection, task_id: int, state: str, reason: str | None, actor: str) -> None:
    conn.execute(text("INSERT INTO reconcile_task_event (task_id, state, reason, actor) VALUES (:t, :s, :r, :a)"),
                 {"t": task_id, "s": state, "r": reason, "a": actor})


def _set_state(conn: Connection, task_id: int, state: str, reason: str | None, actor: str) -> None:
    conn.execute(text("UPDATE reconcile_task SET state = :s, state_reason = :r, updated_at = now() WHERE id = :t"),
                 {"t": task_id, "s": state, "r": reason})
    _event(conn, task_id, state, reason, actor)


def task(conn: Connection, task_id: int, lock: bool = False) -> dict[str, Any] | None:
    """One task with its history, or None."""
    sql = "SELECT * FROM reconcile_task WHERE id = :t" + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {"t": task_id}).mappings().first()
    if row is None:
        return None
    events = conn.execute(text("SELECT state, reason, actor, at FROM reconcile_task_event WHERE task_id = :t "
                               "ORDER BY id"), {"t": task_id}).mappings().all()
    return dict(row) | {"history": [dict(e) for e in events]}


def change_state(conn: Connection, task_id: int, state: str, reason: str | None, actor: str) -> dict[str, Any]:
    """Set a task's state (confirmed / corrected / dismissed — dismissing needs a reason; reopen: open)."""
    if state not in STATES:
        raise InvalidInput(f"状态应为 {'、'.join(STATES)} 之一 state must be one of {', '.join(STATES)}",
                           {"field": "state"})
    reason = (reason or "").strip() or None
    if state == "dismissed" and not reason:
        raise InvalidField("reason", "驳回须说明理由", "dismissing a task needs a reason")
    current = task(conn, task_id, lock=True)
    if current is None:
        raise NotFound(f"比对任务不存在 no reconciliation task {task_id}")
    if current["state"] == state:
        raise Conflict(f"任务已是该状态 the task is already {state}")
    if state == "open" and conn.execute(text(
            "SELECT 1 FROM reconcile_task WHERE state = 'open' AND kind = :k AND address_code = :c AND subject = :s"),
            {"k": current["kind"], "c": current["address_code"], "s": current["subject"]}).first():
        raise Conflict("同一差异已有未处理任务 an open task for the same mismatch exists")
    _set_state(conn, task_id, state, reason, actor)
    return task(conn, task_id) or {}


def list_tasks(conn: Connection, where: dict[str, frozenset[str]] | None, state: str | None, kind: str | None,
               police_area: str | None, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Tasks matching the filters within ``where`` (kind → codes a task must match one of; None: all)."""
    conds: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if where is not None:
        ors = []
        for col, k in (("police_area", "police_area"), ("grid_code", "grid"), ("community_code", "community"),
                       ("township_code", "township")):
            if where.get(k):
                ors.append(f"{col} = ANY(:w_{k})")
                params[f"w_{k}"] = sorted(where[k])
        conds.append("(" + (" OR ".join(ors) or "FALSE") + ")")
    for col, value in (("state", state), ("kind", kind), ("police_area", police_area)):
        if value:
            conds.append(f"{col} = :{col}")
            params[col] = value
    cond = " AND ".join(conds)
    total = conn.execute(text(f"SELECT count(*) FROM reconcile_task WHERE {cond}"), params).scalar_one()
    rows = conn.execute(text(f"SELECT * FROM reconcile_task WHERE {cond} ORDER BY id LIMIT :limit OFFSET :offset"),
                        params).mappings().all()
    return int(total), [dict(r) for r in rows]


def task_counts(conn: Connection, area: str) -> dict[str, dict[str, int]]:
    """Tasks of a police area by kind and state."""
    out: dict[str, dict[str, int]] = {}
    for kind, state, n in conn.execute(text("SELECT kind, state, count(*) FROM reconcile_task WHERE police_area = :a "
                                            "GROUP BY 1, 2"), {"a": area}):
        out.setdefault(kind, {})[state] = int(n)
    return out


_COMPLETENESS = """
WITH g AS (
  SELECT g.code, g.community_code, g.geom FROM grid g
  WHERE g.valid_to IS NULL AND g.level = 'grid' AND ({grid_filter})
), a AS (
  SELECT g.code AS grid, s.code, s.level FROM g JOIN standard_address s ON s.valid_to IS NULL
  AND s.status = 'active' AND s.level IN ('building', 'room') AND ST_Intersects(g.geom, s.geom)
)
SELECT g.code AS grid_code, g.community_code,
  (SELECT count(*) FROM a WHERE a.grid = g.code) AS dwellings,
  (SELECT count(*) FROM a WHERE a.grid = g.code AND EXISTS (SELECT 1 FROM house_info h WHERE h.address_code = a.code
     AND h.valid_to IS NULL)) AS with_house_use,
  (SELECT count(*) FROM a WHERE a.grid = g.code AND a.level = 'room') AS rooms,
  (SELECT count(*) FROM a WHERE a.grid = g.code AND a.level = 'room' AND EXISTS (SELECT 1 FROM residence r
     WHERE r.address_code = a.code AND r.to_date IS NULL)) AS rooms_with_people,
  (SELECT count(*) FROM reconcile_task t WHERE t.grid_code = g.code AND t.state = 'open') AS open_tasks
FROM g ORDER BY g.code
"""


def completeness(conn: Connection, where: dict[str, frozenset[str]] | None) -> list[dict[str, Any]]:
    """Per grid (within ``where``; None: every grid): building / room addresses, those with a house record
    (use recorded), rooms, rooms with people recorded, open reconciliation tasks, and the two shares."""
    params: dict[str, Any] = {}
    if where is None:
        cond = "TRUE"
    else:
        ors = []
        if where.get("grid"):
            ors.append("g.code = ANY(:w_grid)")
        if where.get("community"):
            ors.append("g.community_code = ANY(:w_community)")
        if where.get("township"):
            ors.append("g.community_code IN (SELECT code FROM admin_unit WHERE parent_code = ANY(:w_township))")
        if where.get("police_area"):
            ors.append("EXISTS (SELECT 1 FROM police_area p WHERE p.code = ANY(:w_police_area) "
                       "AND ST_Intersects(p.geom, g.geom))")
        params = {f"w_{k}": sorted(v) for k, v in where.items()}
        cond = " OR ".join(ors) or "FALSE"
    rows = conn.execute(text(_COMPLETENESS.format(grid_filter=cond)), params).mappings()
    out = []
    for r in rows:
        d = {k: (int(v) if isinstance(v, int) else v) for k, v in r.items()}
        d["house_share"] = round(d["with_house_use"] / d["dwellings"], 3) if d["dwellings"] else None
        d["people_share"] = round(d["rooms_with_people"] / d["rooms"], 3) if d["rooms"] else None
        out.append(d)
    return out


__all__ = ["Mismatch", "change_state", "completeness", "import_police", "list_tasks", "run", "task", "task_counts"]
