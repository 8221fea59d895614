"""Police–grid reconciliation on the demo: synthetic people at a real house number inside the test police
area (M-PA-1, drawn around it by the residents conftest), a police extract imported through the API, each
outcome (matched, police_only, grid_only, different_address, field_conflict, vacant_occupied, unit_*),
idempotent re-runs, tasks closed when the sources agree, listing masked by role with audited clear reads,
state changes with history. The pure comparison is tested on plain records too."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import text

from residents import service
from residents import validate as v
from residents.reconcile import compare

AREA = "M-PA-1"


def _id(seq: int) -> str:
    body = f"310104198805{seq:02d}0{seq:02d}"
    return body + v.id_check_char(body)


def _credit(seq: int) -> str:
    body = f"91310104MA1R{seq:05d}"
    return body + v.credit_check_char(body)


def _csv(rows) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8")


def test_compare_pure():
    police = [{"record_type": "person", "address_code": "A", "id_number": "1", "name": "甲"},
              {"record_type": "person", "address_code": "A", "id_number": "2", "name": "乙"},
              {"record_type": "person", "address_code": "A", "id_number": "3", "name": "丙"},
              {"record_type": "unit", "address_code": "A", "credit_code": "U1"}]
    grid = [{"person_id": 1, "id_number": "1", "name": "甲", "address_code": "A"},
            {"person_id": 2, "id_number": "2", "name": "乙二", "address_code": "A"},
            {"person_id": 4, "id_number": "4", "name": "丁", "address_code": "A"},
            {"person_id": 5, "id_number": None, "name": "戊", "address_code": "A"}]
    by_doc = grid[:2] + [{"person_id": 3, "id_number": "3", "name": "丙", "address_code": "B"}]
    out = compare(police, grid, by_doc, {"A": "空置"}, [{"unit_id": 9, "credit_code": None, "address_code": "A"}])
    kinds = sorted((m.kind, m.subject) for m in out.mismatches)
    assert kinds == [("different_address", "3"), ("field_conflict", "2"), ("grid_only", "4"),
                     ("grid_only", "person:5"), ("police_only", "U1"), ("unit_no_credit_code", "unit:9"),
                     ("vacant_occupied", "house")]
    assert out.counts["matched"] == 1 and out.counts["grid_only"] == 2
    assert compare(police, grid, by_doc, {}, []).mismatches == compare(police, grid, by_doc, {}, []).mismatches


@pytest.fixture
def scene(engine, demo_addresses):
    """Grid records at the test house number (H) and one person elsewhere; removed afterwards."""
    h, other = demo_addresses["house_number"], demo_addresses["other_house_number"]
    made: dict[str, int] = {}
    with engine.begin() as conn:
        for key, name, where in (("A", "甲比对", h), ("B", "王五", h), ("C", "丙比对", h), ("D", "丁比对", other)):
            p, _ = service.create_person(conn, {"name": name, "id_number": _id(len(made) + 1)}, "tester", where,
                                         date(2020, 1, 1))
            made[key] = p.id
        old_house = conn.execute(text("SELECT row_id FROM house_info WHERE address_code = :c AND valid_to IS NULL"),
                                 {"c": h}).scalar()
        service.record_house(conn, h, {"use": "空置"}, "tester")
        u1 = service.create_unit(conn, {"name": "无码小店", "address_code": h}, "tester")
        u2 = service.create_unit(conn, {"name": "有码公司", "address_code": h, "credit_code": _credit(1)}, "tester")
    yield {"h": h, "other": other, "people": made, "units": (u1.id, u2.id)}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM reconcile_task WHERE police_area = :a"), {"a": AREA})
        conn.execute(text("DELETE FROM police_batch WHERE police_area = :a"), {"a": AREA})
        for pid in made.values():
            conn.execute(text("DELETE FROM residence WHERE person_id = :p"), {"p": pid})
            conn.execute(text("DELETE FROM person WHERE id = :p"), {"p": pid})
        conn.execute(text("DELETE FROM org_unit WHERE id = ANY(:u)"), {"u": [u1.id, u2.id]})
        conn.execute(text("DELETE FROM house_info WHERE address_code = :c AND changed_by = 'tester'"), {"c": h})
        if old_house:
            conn.execute(text("UPDATE house_info SET valid_to = NULL WHERE row_id = :r"), {"r": old_house})


def _extract(scene) -> bytes:
    h = scene["h"]
    return _csv([["记录类型", "地址编码", "证件号码", "姓名", "房屋用途", "统一社会信用代码"],
                 ["人口", h, _id(1), "甲比对", "", ""],          # matched
                 ["人口", h, _id(2), "王伍", "", ""],            # field_conflict (name)
                 ["人口", h, _id(4), "丁比对", "", ""],          # different_address (grid: elsewhere)
                 ["人口", h, _id(9), "戊公安", "", ""],          # police_only
                 ["单位", h, "", "公安有单位", "", _credit(7)]])  # police_only unit


def _tasks(client, headers, **params):
    res = client.get("/reconcile/tasks", params={"police_area": AREA, "limit": 1000, **params}, headers=headers)
    assert res.status_code == 200, res.text
    return res.json()["tasks"]


def test_reconciliation_end_to_end(anon_client, role_headers, engine, scene):
    police = role_headers["police"]
    h = scene["h"]
    bad = _csv([["record_type", "address_code", "id_number"], ["person", h, _id(1)[:-1] + "0" if _id(1)[-1] != "0"
                else _id(1)[:-1] + "1"], ["person", scene["other"], _id(3)], ["animal", h, ""]])
    res = anon_client.post("/reconcile/police-import", params={"police_area": AREA}, headers=police,
                           files={"file": ("bad.csv", bad)})
    assert res.status_code == 422
    errs = {e["row"]: e["field"] for e in res.json()["detail"]["errors"]}
    assert errs == {2: "id_number", 3: "address_code", 4: "record_type"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM police_batch WHERE police_area = :a"), {"a": AREA}).scalar() == 0
    # a run before any extract is a clear 409
    assert anon_client.post("/reconcile/run", params={"police_area": AREA}, headers=police).status_code == 409

    res = anon_client.post("/reconcile/police-import", params={"police_area": AREA}, headers=police,
                           files={"file": ("extract.csv", _extract(scene))})
    assert res.status_code == 201, res.text
    assert res.json()["counts"] == {"person": 4, "house": 0, "unit": 1}
    # the police extract is its own source: the grid's person B keeps the grid's name
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM person WHERE id = :p AND valid_to IS NULL"),
                            {"p": scene["people"]["B"]}).scalar() == "王五"

    run = anon_client.post("/reconcile/run", params={"police_area": AREA}, headers=police)
    assert run.status_code == 200, run.text
    counts = run.json()["counts"]
    assert counts["matched"] >= 1 and counts["field_conflict"] == 1 and counts["different_address"] == 1
    assert counts["police_only"] == 2 and counts["vacant_occupied"] == 1
    assert counts["unit_no_credit_code"] >= 1 and counts["unit_not_in_police"] >= 1 and counts["grid_only"] >= 1
    opened = run.json()["tasks"]["opened"]
    assert opened == sum(v for k, v in counts.items() if k != "matched")

    tasks = _tasks(anon_client, police)
    mine = {(t["kind"], t["subject"]) for t in tasks if t["address_code"] == h}
    assert ("field_conflict", _id(2)) in mine and ("different_address", _id(4)) in mine
    assert ("police_only", _id(9)) in mine and ("grid_only", _id(3)) in mine and ("police_only", _credit(7)) in mine
    assert ("vacant_occupied", "house") in mine and ("unit_not_in_police", _credit(1)) in mine
    assert all(t["police_area"] == AREA and t["state"] == "open" for t in tasks)
    # completeness and open mismatches per grid, within the caller's jurisdiction
    summ = anon_client.get("/reconcile/summary", headers=role_headers["grid_manager"])
    assert summ.status_code == 200, summ.text
    grids = summ.json()["grids"]
    grid_of_h = next(t["grid_code"] for t in tasks if t["address_code"] == h)
    mine_grid = [g for g in grids if g["grid_code"] == grid_of_h]
    assert mine_grid and mine_grid[0]["open_tasks"] >= len([t for t in tasks if t["grid_code"] == grid_of_h])
    assert all(g["people_share"] is None or 0 <= g["people_share"] <= 1 for g in grids)
    everywhere = anon_client.get("/reconcile/summary", headers=role_headers["admin"]).json()
    assert len(everywhere["grids"]) >= len(grids) and everywhere["totals"]["open_tasks"] >= len(tasks)
    assert anon_client.get("/reconcile/summary", headers=role_headers["planner"]).status_code == 403

    # police read ID numbers and names in clear (audited); grid managers see them masked
    conflict = next(t for t in tasks if t["kind"] == "field_conflict")
    assert conflict["name_police"] == "王伍" and conflict["name_grid"] == "王五"
    with engine.connect() as conn:
        last = conn.execute(text("SELECT actor, detail FROM audit_log WHERE action = 'reconcile.read_clear' "
                                 "ORDER BY id DESC LIMIT 1")).one()
    assert last[0] == "m-police" and "subject" in last[1]["fields"]
    grid_view = _tasks(anon_client, role_headers["grid_manager"])
    gc = next(t for t in grid_view if t["kind"] == "field_conflict")
    assert gc["subject"] != _id(2) and "*" in gc["subject"] and gc["name_grid"] != "王五"
    assert {t["id"] for t in grid_view} <= {t["id"] for t in tasks} and grid_view
    assert anon_client.get("/reconcile/tasks", headers=role_headers["planner"]).status_code == 403
    assert anon_client.get("/reconcile/tasks").status_code == 401
    assert anon_client.post("/reconcile/run", params={"police_area": AREA},
                            headers=role_headers["community"]).status_code == 403

    # a re-run opens nothing new; correcting the grid's name closes the conflict as corrected
    again = anon_client.post("/reconcile/run", params={"police_area": AREA}, headers=police).json()
    assert again["tasks"]["opened"] == 0 and again["tasks"]["still_open"] == opened
    with engine.begin() as conn:
        service.update_person(conn, scene["people"]["B"], {"name": "王伍"}, "tester")
    third = anon_client.post("/reconcile/run", params={"police_area": AREA}, headers=police).json()
    assert third["tasks"]["closed"] == 1 and third["counts"].get("field_conflict", 0) == 0
    closed = anon_client.get(f"/reconcile/tasks/{conflict['id']}", headers=police).json()
    assert closed["state"] == "corrected" and [e["state"] for e in closed["history"]] == ["open", "corrected"]

    # the grid manager handles a task: dismissing needs a reason; history kept; audited
    task = next(t for t in grid_view if t["kind"] == "grid_only")
    url = f"/reconcile/tasks/{task['id']}/state"
    gm = role_headers["grid_manager"]
    assert anon_client.post(url, json={"state": "dismissed"}, headers=gm).status_code == 422
    assert anon_client.post(url, json={"state": "bogus"}, headers=gm).status_code == 422
    ok = anon_client.post(url, json={"state": "dismissed", "reason": "已搬离，待公安注销"}, headers=gm)
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "dismissed" and [e["state"] for e in ok.json()["history"]] == ["open", "dismissed"]
    assert anon_client.post(url, json={"state": "dismissed", "reason": "x"}, headers=gm).status_code == 409
    assert anon_client.post("/reconcile/tasks/999999999/state", json={"state": "confirmed"},
                            headers=role_headers["admin"]).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'reconcile.task_state' AND "
                                 ":r = ANY(record_ids)"), {"r": f"reconcile_task:{task['id']}"}).scalar() == 1


def test_import_outside_the_area_or_unknown_area(anon_client, role_headers, scene):
    res = anon_client.post("/reconcile/police-import", params={"police_area": "NO-SUCH"},
                           headers=role_headers["admin"], files={"file": ("e.csv", _extract(scene))})
    assert res.status_code == 404
    res = anon_client.post("/reconcile/police-import", params={"police_area": "OTHER-AREA"},
                           headers=role_headers["police"], files={"file": ("e.csv", _extract(scene))})
    assert res.status_code == 403
