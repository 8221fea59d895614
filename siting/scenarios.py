"""Named siting scenarios: a siting run saved under a name, scoped to an area, versioned.

Saving a scenario adds version ``n + 1`` of its (name, area) and never changes or deletes another
scenario (nor the planned facilities of the map page: publishing a plan is ``POST /analysis/siting``
with ``save``). A comparison of two scenarios is a table of what a planner weighs: households covered,
the share, the new sites, their cost when a cost per site was given.
"""

from __future__ import annotations

import json

from sqlalchemy import text

from . import service
from .errors import ScenarioNotFound, SitingInputError

COLUMNS = "id, name, version, area_code, params, summary, created_by, created_at"


def run_and_save(conn, p: dict, progress=None) -> dict:
    """Solve the scenario ``p`` (validated request fields) and save it as the next version of its name."""
    res = service.siting_analysis(
        conn, p["facility_type"], model=p.get("model", "mclp"), new_sites=p.get("new_sites"), p=p.get("p"),
        distance=p.get("distance"), radius_m=p.get("radius_m"), candidates=tuple(p.get("candidates") or ("buildings",)),
        community_code=p.get("area_code"), keep_existing=p.get("keep_existing", True), method=p.get("method", "auto"),
        time_limit_s=p.get("time_limit_s", 60.0), points=p.get("points"))
    if progress is not None:
        progress(0.9, "保存方案 saving the scenario")
    s = res["summary"]
    cost = p.get("cost_per_site")
    if cost is not None:
        s["cost"] = round(float(cost) * s["new_sites"], 2)
    s["name"] = p["name"]
    # one writer per (name, area) at a time: the version number is read and used in this transaction
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('siting_scenario:' || :n || ':' || coalesce(:a, '')))"),
                 {"n": p["name"], "a": p.get("area_code")})
    version = conn.execute(text(
        "SELECT coalesce(max(version), 0) + 1 FROM siting_scenario WHERE name = :n AND area_code IS NOT DISTINCT FROM :a"),
        {"n": p["name"], "a": p.get("area_code")}).scalar_one()
    params = {k: v for k, v in p.items() if k != "points"}
    params["points"] = len(p.get("points") or [])
    sid = conn.execute(text("""
        INSERT INTO siting_scenario (name, version, area_code, params, summary, sites, created_by)
        VALUES (:n, :v, :a, CAST(:p AS jsonb), CAST(:s AS jsonb), CAST(:f AS jsonb), :u) RETURNING id"""),
        {"n": p["name"], "v": version, "a": p.get("area_code"), "p": json.dumps(params, ensure_ascii=False),
         "s": json.dumps(s, ensure_ascii=False), "f": json.dumps(res["layers"]["sites"], ensure_ascii=False),
         "u": p.get("created_by", "")}).scalar_one()
    res["scenario"] = {"id": sid, "name": p["name"], "version": version, "area_code": p.get("area_code")}
    return res


def get(conn, scenario_id: int) -> dict:
    """One saved scenario with its sites layer (``ScenarioNotFound`` otherwise)."""
    row = conn.execute(text(f"SELECT {COLUMNS}, sites FROM siting_scenario WHERE id = :id"),
                       {"id": scenario_id}).mappings().first()
    if row is None:
        raise ScenarioNotFound(f"没有编号为 {scenario_id} 的选址方案 no siting scenario {scenario_id}")
    return dict(row)


def listing(conn, area_code: str | None = None, name: str | None = None) -> list[dict]:
    """Saved scenarios, newest first, optionally of one area and / or name."""
    rows = conn.execute(text(f"""
        SELECT {COLUMNS} FROM siting_scenario
        WHERE (CAST(:a AS text) IS NULL OR area_code = :a) AND (CAST(:n AS text) IS NULL OR name = :n)
        ORDER BY created_at DESC, id DESC LIMIT 200"""), {"a": area_code, "n": name}).mappings().all()
    return [dict(r) for r in rows]


#: rows of the comparison table: (summary key, Chinese label)
COMPARE_ROWS = (
    ("facility_type", "设施类型"), ("model", "模型"), ("radius_m", "服务半径（米）"), ("distance", "距离方式"),
    ("existing", "现有设施"), ("new_sites", "新增设施"), ("households", "住户总数"),
    ("covered_before", "原覆盖住户"), ("covered_after", "方案覆盖住户"), ("covered_share_after", "方案覆盖率"),
    ("cost", "新增成本"),
)


def compare(conn, a_id: int, b_id: int) -> dict:
    """Two scenarios side by side: a row per measure (values of A and B, B − A where numeric)."""
    if a_id == b_id:
        raise SitingInputError("请选择两个不同的方案 (pick two different scenarios)")
    a, b = get(conn, a_id), get(conn, b_id)
    rows = []
    for key, label in COMPARE_ROWS:
        va, vb = a["summary"].get(key), b["summary"].get(key)
        diff = (round(vb - va, 4) if isinstance(va, (int, float)) and isinstance(vb, (int, float))
                and not isinstance(va, bool) else None)
        rows.append({"key": key, "label": label, "a": va, "b": vb, "b_minus_a": diff})
    head = {k: {"id": s["id"], "name": s["name"], "version": s["version"], "area_code": s["area_code"]}
            for k, s in (("a", a), ("b", b))}
    return {"a": head["a"], "b": head["b"], "rows": rows,
            "layers": {"a_sites": a["sites"], "b_sites": b["sites"]}}
