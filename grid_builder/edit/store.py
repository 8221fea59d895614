"""SQL of grid editing (bound parameters only): the community's current grids and buildings, versioned
writes of the grids an edit touches, the edit records and the code map, history reads."""

from __future__ import annotations

import json
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from grid_builder.geom import as_multipolygon
from grid_builder.store import AreaRow
from grid_builder.store._wkb import from_wkb, to_wkb

_EDIT_COLS = (
    "id, community_code, kind, status, operations, base_versions, touched, reason, created_by, created_at, "
    "updated_at, submitted_by, submitted_at, decided_by, decided_at, decision_reason, applied_at, result, "
    "rollback_of, rolled_back_by"
)


def community(conn: Connection, code: str) -> dict | None:
    """The community's code, name, township, whether retired, and its boundary (lon/lat)."""
    r = conn.execute(
        text("SELECT code, name, parent_code, level, valid_to, ST_AsBinary(geom) AS g FROM admin_unit "
             "WHERE code = :c"), {"c": code}).mappings().first()
    if r is None:
        return None
    return {**{k: r[k] for k in ("code", "name", "parent_code", "level", "valid_to")}, "geom": from_wkb(r["g"])}


def lock_community(conn: Connection, code: str) -> None:
    """Serialise writes of one community's grids (held until the transaction ends)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('grid_edit:' || :c))"), {"c": code})


def current_grids(conn: Connection, community_code: str) -> list[dict]:
    """Current grids (level grid) of a community: code, name, version, geometry (lon/lat)."""
    rows = conn.execute(
        text("SELECT code, name, version, ST_AsBinary(geom) AS g FROM grid WHERE community_code = :c "
             "AND level = 'grid' AND valid_to IS NULL ORDER BY code"), {"c": community_code}).mappings()
    return [{"code": r["code"], "name": r["name"], "version": int(r["version"]), "geom": from_wkb(r["g"])}
            for r in rows]


def assigned_buildings(conn: Connection, community_code: str, grid_code: str | None = None
                       ) -> list[tuple[int, float, BaseGeometry]]:
    """(id, households, footprint lon/lat) of the buildings assigned to the community's grids (or to one)."""
    rows = conn.execute(
        text("SELECT b.id, ga.households, ST_AsBinary(b.geom) AS g FROM grid_assignment ga JOIN building b "
             "ON b.id = ga.building_id WHERE ga.community_code = :c AND (CAST(:g AS text) IS NULL OR "
             "ga.grid_code = :g) ORDER BY b.id"), {"c": community_code, "g": grid_code}).all()
    return [(int(i), float(h or 0), from_wkb(g)) for i, h, g in rows]


def next_seq(conn: Connection, community_code: str) -> int:
    """The community's next unused 3-digit grid sequence number (codes are never reused)."""
    n = conn.execute(
        text("SELECT COALESCE(max(CAST(substr(code, 13, 3) AS int)), 0) FROM grid WHERE community_code = :c "
             "AND level = 'grid' AND length(code) = 15"), {"c": community_code}).scalar_one()
    return int(n) + 1


def next_micro_seq(conn: Connection, grid_code: str) -> int:
    """The grid's next unused 2-digit micro-grid sequence number (codes are never reused)."""
    n = conn.execute(
        text("SELECT COALESCE(max(CAST(substr(code, 16, 2) AS int)), 0) FROM grid WHERE parent_code = :g "
             "AND level = 'microgrid' AND length(code) = 17"), {"g": grid_code}).scalar_one()
    return int(n) + 1


def current_microgrid_versions(conn: Connection, grid_code: str) -> dict[str, int]:
    """Current version of each current micro-grid of a grid."""
    rows = conn.execute(text("SELECT code, version FROM grid WHERE parent_code = :g AND level = 'microgrid' "
                             "AND valid_to IS NULL"), {"g": grid_code}).all()
    return {c: int(v) for c, v in rows}


def current_versions(conn: Connection, codes: list[str]) -> dict[str, int]:
    """Current version of each code that is current (retired codes are missing)."""
    rows = conn.execute(text("SELECT code, version FROM grid WHERE code = ANY(:c) AND valid_to IS NULL"),
                        {"c": list(codes)}).all()
    return {c: int(v) for c, v in rows}


def current_staff(conn: Connection, codes: list[str]) -> list[dict]:
    """Current staff terms on these grids or their micro-grids (role and code only, no person)."""
    rows = conn.execute(
        text("SELECT s.grid_code, s.role, s.valid_from FROM grid_staff s WHERE s.valid_to IS NULL AND "
             "(s.grid_code = ANY(:c) OR substr(s.grid_code, 1, 15) = ANY(:c)) ORDER BY s.grid_code, s.role"),
        {"c": list(codes)}).all()
    return [{"grid_code": g, "role": r, "since": v.isoformat()} for g, r, v in rows]


def close_rows(conn: Connection, grid_codes: list[str]) -> list[str]:
    """Close (valid_to = now) the current rows of these grids and of their micro-grids; returns the codes."""
    rows = conn.execute(
        text("UPDATE grid SET valid_to = now() WHERE valid_to IS NULL AND (code = ANY(:c) OR "
             "(level = 'microgrid' AND parent_code = ANY(:c))) RETURNING code"), {"c": list(grid_codes)}).all()
    return sorted(r[0] for r in rows)


def insert_rows(conn: Connection, community_code: str, rows: list[AreaRow], properties: dict) -> dict[str, int]:
    """Insert new current rows (version = the code's highest + 1); returns code → version written."""
    if not rows:
        return {}
    found = conn.execute(text("SELECT code, max(version) FROM grid WHERE code = ANY(:c) GROUP BY code"),
                         {"c": [a.code for a in rows]}).all()
    top: dict[str, int] = {str(c): int(v) for c, v in found}
    out = {a.code: int(top.get(a.code) or 0) + 1 for a in rows}
    conn.execute(
        text("INSERT INTO grid (code, name, level, parent_code, community_code, households, buildings, area_m2, "
             "compactness, contiguous, flags, version, source, properties, geom) VALUES (:code, :name, :level, "
             ":parent, :c, :hh, :nb, :area, :pp, :contig, :flags, :v, 'edit', CAST(:props AS jsonb), "
             "ST_Multi(ST_GeomFromWKB(:g, 4326)))"),
        [{"code": a.code, "name": a.name, "level": a.level, "parent": a.parent_code, "c": community_code,
          "hh": int(a.households), "nb": a.buildings, "area": float(a.area_m2), "pp": float(a.compactness),
          "contig": bool(a.contiguous), "flags": list(a.flags), "v": out[a.code],
          "props": json.dumps({**properties, **(a.properties or {})}, ensure_ascii=False),
          "g": to_wkb(as_multipolygon(a.geom))} for a in rows])
    return out


def set_assignments(conn: Connection, community_code: str, rows: list[dict]) -> None:
    """Point buildings at their new grid and micro-grid (rows: building_id, grid_code, microgrid_code,
    households)."""
    if not rows:
        return
    conn.execute(
        text("UPDATE grid_assignment SET grid_code = :grid_code, microgrid_code = :microgrid_code, "
             "households = :households, community_code = :c WHERE building_id = :building_id"),
        [{**r, "c": community_code} for r in rows])


def insert_edit(conn: Connection, rec: dict) -> int:
    """A new edit record; returns its id."""
    return int(conn.execute(
        text("INSERT INTO grid_edit (community_code, kind, status, operations, base_versions, touched, reason, "
             "created_by, rollback_of) VALUES (:community_code, :kind, :status, CAST(:operations AS jsonb), "
             "CAST(:base_versions AS jsonb), CAST(:touched AS jsonb), :reason, :created_by, :rollback_of) "
             "RETURNING id"),
        {**rec, **{k: json.dumps(rec[k], ensure_ascii=False) for k in ("operations", "base_versions", "touched")}},
    ).scalar_one())


def update_edit(conn: Connection, edit_id: int, **fields: Any) -> None:
    """Set columns of an edit (names from the fixed column list; JSON columns serialised)."""
    allowed = {"status", "operations", "base_versions", "touched", "reason", "submitted_by", "decided_by",
               "decision_reason", "result", "rolled_back_by"}
    stamps = {"submitted_by": "submitted_at", "decided_by": "decided_at"}
    sets: list[str] = ["updated_at = now()"]
    params: dict[str, Any] = {"id": edit_id}
    for k, v in fields.items():
        if k not in allowed:
            raise ValueError(k)
        if k in ("operations", "base_versions", "touched", "result"):
            sets.append(f"{k} = CAST(:{k} AS jsonb)")
            params[k] = json.dumps(v, ensure_ascii=False)
        else:
            sets.append(f"{k} = :{k}")
            params[k] = v
        if k in stamps:
            sets.append(f"{stamps[k]} = now()")
    if fields.get("result") is not None:
        sets.append("applied_at = now()")
    conn.execute(text(f"UPDATE grid_edit SET {', '.join(sets)} WHERE id = :id"), params)  # names are fixed


def _edit_dict(r: Any) -> dict:
    d = dict(r)
    for k in ("created_at", "updated_at", "submitted_at", "decided_at", "applied_at"):
        if d.get(k) is not None:
            d[k] = d[k].isoformat()
    return d


def get_edit(conn: Connection, edit_id: int, for_update: bool = False) -> dict | None:
    """One edit record (locked for update when asked)."""
    r = conn.execute(text(f"SELECT {_EDIT_COLS} FROM grid_edit WHERE id = :id" + (" FOR UPDATE" if for_update
                                                                                   else "")),
                     {"id": edit_id}).mappings().first()
    return _edit_dict(r) if r else None


def list_edits(conn: Connection, status: str | None, community_code: str | None, limit: int) -> list[dict]:
    """Edits, newest first, optionally by state and community."""
    rows = conn.execute(
        text(f"SELECT {_EDIT_COLS} FROM grid_edit WHERE (CAST(:s AS text) IS NULL OR status = :s) AND "
             "(CAST(:c AS text) IS NULL OR community_code = :c) ORDER BY id DESC LIMIT :n"),
        {"s": status, "c": community_code, "n": limit}).mappings()
    return [_edit_dict(r) for r in rows]


def insert_code_map(conn: Connection, edit_id: int, pairs: list[tuple[str, str, str]]) -> None:
    """Old → new code relations (kind, old, new) an applied edit made."""
    if pairs:
        conn.execute(text("INSERT INTO grid_code_map (edit_id, kind, old_code, new_code) VALUES (:e, :k, :o, :n)"),
                     [{"e": edit_id, "k": k, "o": o, "n": n} for k, o, n in pairs])


def code_map(conn: Connection, code: str) -> list[dict]:
    """Code-map entries where the code is the old or the new one."""
    rows = conn.execute(
        text("SELECT edit_id, kind, old_code, new_code, at FROM grid_code_map WHERE old_code = :c OR "
             "new_code = :c ORDER BY id"), {"c": code}).mappings()
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]


def versions(conn: Connection, code: str) -> list[dict]:
    """Every version of a grid code, oldest first: times, counts, source and the edit that wrote it."""
    rows = conn.execute(
        text("SELECT code, name, level, version, valid_from, valid_to, households, buildings, area_m2, "
             "compactness, source, properties -> 'edit' AS edit FROM grid WHERE code = :c ORDER BY version"),
        {"c": code}).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["valid_from"] = d["valid_from"].isoformat()
        d["valid_to"] = d["valid_to"].isoformat() if d["valid_to"] else None
        out.append(d)
    return out


def version_geom(conn: Connection, code: str, version: int) -> BaseGeometry | None:
    """The geometry (lon/lat) of one version of a code."""
    g = conn.execute(text("SELECT ST_AsBinary(geom) FROM grid WHERE code = :c AND version = :v"),
                     {"c": code, "v": version}).scalar()
    return from_wkb(g)


def last_geom(conn: Connection, code: str) -> tuple[str, BaseGeometry] | None:
    """Name and geometry (lon/lat) of the latest version of a code (current or closed)."""
    r = conn.execute(text("SELECT name, ST_AsBinary(geom) FROM grid WHERE code = :c ORDER BY version DESC "
                          "LIMIT 1"), {"c": code}).first()
    return None if r is None else (r[0], from_wkb(r[1]))


def buildings_in_version(conn: Connection, code: str, version: int) -> list[int]:
    """Ids of the buildings whose anchor lies inside one version of a grid."""
    rows = conn.execute(
        text("SELECT b.id FROM building b, grid g WHERE g.code = :c AND g.version = :v AND b.geom && g.geom "
             "AND ST_Contains(g.geom, ST_PointOnSurface(b.geom)) ORDER BY b.id"), {"c": code, "v": version}).all()
    return [int(r[0]) for r in rows]


def names(conn: Connection, codes: list[str]) -> dict[str, str]:
    """Latest name of each code."""
    rows = conn.execute(text("SELECT DISTINCT ON (code) code, name FROM grid WHERE code = ANY(:c) ORDER BY code, "
                             "version DESC"), {"c": list(codes)}).all()
    return {str(c): str(n) for c, n in rows}


def unchanged_since(conn: Connection, versions: dict[str, int]) -> dict[str, int]:
    """Of ``code → version``, the codes whose current row is that version or has the same geometry (a
    rollback of a later edit restores it as a newer version); maps them to their current version."""
    rows = conn.execute(
        text("SELECT n.code, n.version FROM grid n JOIN grid o ON o.code = n.code AND o.version = "
             "CAST(CAST(:v AS jsonb) ->> n.code AS int) WHERE n.code = ANY(:c) AND n.valid_to IS NULL AND "
             "(n.version = o.version OR ST_HausdorffDistance(n.geom, o.geom) < 1e-8)"),
        {"c": list(versions), "v": json.dumps(versions)}).all()
    return {c: int(v) for c, v in rows}


def current_microgrids(conn: Connection, grid_codes: list[str]) -> list[dict]:
    """Current micro-grids of these grids: code, parent, households, flags, unit range, geometry (lon/lat)."""
    rows = conn.execute(
        text("SELECT code, parent_code, households, flags, properties -> 'building_units' AS part, "
             "ST_AsBinary(geom) AS g FROM grid WHERE level = 'microgrid' AND valid_to IS NULL AND "
             "parent_code = ANY(:c) ORDER BY code"), {"c": list(grid_codes)}).mappings()
    return [{**{k: r[k] for k in ("code", "parent_code", "households", "flags", "part")}, "geom": from_wkb(r["g"])}
            for r in rows]


def snap_lines(conn: Connection, community_code: str, bbox: tuple[float, float, float, float], margin_deg: float
               ) -> dict[str, list[BaseGeometry]]:
    """Snapping targets near a lon/lat box (grown by ``margin_deg``): road centre lines, the community's
    street blocks and building footprints (lon/lat)."""
    env = {"x0": bbox[0] - margin_deg, "y0": bbox[1] - margin_deg, "x1": bbox[2] + margin_deg,
           "y1": bbox[3] + margin_deg, "c": community_code}
    box = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
    out = {}
    for kind, sql in (("road", f"SELECT ST_AsBinary(geom) FROM road WHERE geom && {box}"),
                      ("block", f"SELECT ST_AsBinary(geom) FROM street_block WHERE community_code = :c "
                                f"AND geom && {box}"),
                      ("building", f"SELECT ST_AsBinary(geom) FROM building WHERE geom && {box}")):
        out[kind] = [from_wkb(r[0]) for r in conn.execute(text(sql), env).all()]
    return out


def units_near(conn: Connection, bbox: tuple[float, float, float, float], margin_deg: float) -> list[dict]:
    """Current townships and communities near a lon/lat box (grown by ``margin_deg``): code, name, level,
    parent code, properties and boundary (lon/lat)."""
    rows = conn.execute(
        text("SELECT code, name, level, parent_code, ST_AsBinary(geom) AS g FROM admin_unit WHERE level IN "
             "('township', 'community') AND valid_to IS NULL AND geom IS NOT NULL AND geom && "
             "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY code"),
        {"x0": bbox[0] - margin_deg, "y0": bbox[1] - margin_deg, "x1": bbox[2] + margin_deg,
         "y1": bbox[3] + margin_deg}).mappings()
    return [{**{k: r[k] for k in ("code", "name", "level", "parent_code")}, "geom": from_wkb(r["g"])} for r in rows]


def set_unit_boundaries(conn: Connection, geoms: dict[str, BaseGeometry], entry: dict) -> None:
    """New boundaries (lon/lat) of townships / communities, with ``entry`` (the edit: id, by, reason)
    appended to their ``properties.boundary_edits``."""
    if geoms:
        conn.execute(
            text("UPDATE admin_unit SET geom = ST_Multi(ST_GeomFromWKB(:g, 4326)), properties = "
                 "COALESCE(properties, '{}'::jsonb) || jsonb_build_object('boundary_edits', "
                 "COALESCE(properties -> 'boundary_edits', '[]'::jsonb) || CAST(:e AS jsonb)) WHERE code = :c"),
            [{"c": c, "g": to_wkb(as_multipolygon(g)), "e": json.dumps([entry], ensure_ascii=False)}
             for c, g in geoms.items()])


def building_anchors_in(conn: Connection, region: BaseGeometry) -> list[tuple[int, BaseGeometry]]:
    """(id, anchor lon/lat) of every building whose anchor (``ST_PointOnSurface``) lies in a lon/lat region."""
    if region.is_empty:
        return []
    rows = conn.execute(
        text("SELECT id, ST_AsBinary(ST_PointOnSurface(geom)) FROM building WHERE geom && ST_GeomFromWKB(:r, 4326) "
             "AND ST_Intersects(ST_GeomFromWKB(:r, 4326), ST_PointOnSurface(geom)) ORDER BY id"),
        {"r": to_wkb(region)}).all()
    return [(int(i), from_wkb(g)) for i, g in rows]


def last_boundary_edits(conn: Connection, codes: list[str]) -> dict[str, int]:
    """The id of the last boundary edit (or its rollback) written into each unit's ``properties.boundary_edits``."""
    rows = conn.execute(text("SELECT code, CAST(properties -> 'boundary_edits' -> -1 ->> 'edit' AS bigint) FROM "
                             "admin_unit WHERE code = ANY(:c)"), {"c": list(codes)}).all()
    return {str(c): int(e) for c, e in rows if e is not None}
