"""SQL for siting: read demand, sites, roads, footprints and areas (projected to metres in SQL), write
facilities, cameras and analysis results. SQLAlchemy Core ``text()`` with bound parameters only.

Every reader takes an open connection and returns plain data (numpy arrays, shapely geometries in
EPSG:32651 metres, lon/lat for output).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text

METRIC_SRID = 32651


@dataclass
class Points:
    """A set of points with attributes: ``xy`` metres (EPSG:32651), ``lonlat`` WGS84."""

    id: np.ndarray
    name: list
    kind: list
    xy: np.ndarray
    lonlat: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.id)

    def take(self, idx) -> Points:
        """The points at ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        return Points(self.id[idx], [self.name[i] for i in idx], [self.kind[i] for i in idx],
                      self.xy[idx], self.lonlat[idx], self.weight[idx])

    @classmethod
    def empty(cls) -> Points:
        """No points."""
        z = np.zeros((0, 2))
        return cls(np.zeros(0, dtype=np.int64), [], [], z, z.copy(), np.zeros(0))

    @classmethod
    def concat(cls, *parts: Points) -> Points:
        """The points of ``parts`` one after another."""
        kept = [p for p in parts if len(p)]
        if not kept:
            return cls.empty()
        return cls(np.concatenate([p.id for p in kept]), sum((p.name for p in kept), []),
                   sum((p.kind for p in kept), []), np.concatenate([p.xy for p in kept]),
                   np.concatenate([p.lonlat for p in kept]), np.concatenate([p.weight for p in kept]))


def _points(rows, weight_col=None) -> Points:
    if not rows:
        return Points.empty()
    return Points(
        id=np.array([r.id for r in rows], dtype=np.int64),
        name=[r.name for r in rows],
        kind=[r.kind for r in rows],
        xy=np.array([[r.x, r.y] for r in rows], dtype=np.float64),
        lonlat=np.array([[r.lon, r.lat] for r in rows], dtype=np.float64),
        weight=np.array([float(getattr(r, weight_col) or 0) if weight_col else 1.0 for r in rows]),
    )


_AREA_FILTER = "(CAST(:area AS text) IS NULL OR ST_Intersects(geom, ST_GeomFromText(CAST(:area AS text), 4326)))"


def table_exists(conn, name: str) -> bool:
    """Whether table ``name`` exists."""
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


def residential_buildings(conn, area_wkt: str | None = None) -> tuple[Points, list]:
    """Buildings with households (``households_est`` > 0): a point on each footprint, and the footprints."""
    rows = conn.execute(text(f"""
        WITH b AS (SELECT id, name, kind_detail AS kind, households_est, geom, ST_PointOnSurface(geom) AS pt
                   FROM building WHERE households_est > 0 AND {_AREA_FILTER})
        SELECT id, name, kind, households_est,
               ST_X(ST_Transform(pt, {METRIC_SRID})) AS x, ST_Y(ST_Transform(pt, {METRIC_SRID})) AS y,
               ST_X(pt) AS lon, ST_Y(pt) AS lat, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb,
               ST_AsBinary(geom) AS wkb_ll
        FROM b ORDER BY id"""), {"area": area_wkt}).all()
    pts = _points(rows, "households_est")
    footprints = [shapely.from_wkb(bytes(r.wkb)) for r in rows]
    footprints_ll = [shapely.from_wkb(bytes(r.wkb_ll)) for r in rows]
    return pts, list(zip(footprints, footprints_ll, strict=True))


def building_footprints(conn, area_wkt: str | None = None, margin_m: float = 0.0) -> list:
    """All building footprints (metres) intersecting the area grown by ``margin_m`` (occluders)."""
    rows = conn.execute(text(f"""
        SELECT ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb FROM building
        WHERE CAST(:area AS text) IS NULL OR ST_DWithin(geom::geography,
              ST_GeomFromText(CAST(:area AS text), 4326)::geography, :margin)"""),
        {"area": area_wkt, "margin": margin_m}).all()
    return [shapely.from_wkb(bytes(r.wkb)) for r in rows]


def building_points(conn, area_wkt: str | None = None) -> Points:
    """A point on every building footprint (candidate sites)."""
    rows = conn.execute(text(f"""
        WITH b AS (SELECT id, name, kind_detail AS kind, households_est, ST_PointOnSurface(geom) AS pt
                   FROM building WHERE {_AREA_FILTER})
        SELECT id, name, kind, households_est,
               ST_X(ST_Transform(pt, {METRIC_SRID})) AS x, ST_Y(ST_Transform(pt, {METRIC_SRID})) AS y,
               ST_X(pt) AS lon, ST_Y(pt) AS lat FROM b ORDER BY id"""), {"area": area_wkt}).all()
    return _points(rows)


def pois(conn, kinds: list[str] | None = None, area_wkt: str | None = None) -> Points:
    """POIs of ``kinds`` (all when None) inside ``area_wkt``."""
    rows = conn.execute(text(f"""
        SELECT id, name, kind, ST_X(ST_Transform(geom, {METRIC_SRID})) AS x,
               ST_Y(ST_Transform(geom, {METRIC_SRID})) AS y, ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM poi WHERE (CAST(:kinds AS text[]) IS NULL OR kind = ANY(CAST(:kinds AS text[])))
          AND {_AREA_FILTER} ORDER BY id"""), {"kinds": kinds, "area": area_wkt}).all()
    return _points(rows)


def entrance_points(conn, area_wkt: str | None = None) -> Points:
    """Building entrances (Tilezen demo address points) inside ``area_wkt``; none without that table."""
    if not table_exists(conn, "demo_address_point"):
        return Points.empty()
    rows = conn.execute(text(f"""
        SELECT id, name, kind, ST_X(ST_Transform(geom, {METRIC_SRID})) AS x,
               ST_Y(ST_Transform(geom, {METRIC_SRID})) AS y, ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM demo_address_point WHERE kind = 'entrance' AND {_AREA_FILTER} ORDER BY id"""),
        {"area": area_wkt}).all()
    return _points(rows)


def existing_facilities(conn, type_code: str, poi_kinds, name_patterns, name_required: bool,
                        area_wkt: str | None = None) -> Points:
    """Facilities of a type: rows of ``facility`` (status existing) plus matching POIs.

    A POI matches when its kind is one of ``poi_kinds`` (and, for types OSM does not split such as
    schools by level, its name matches a pattern), or when its name matches a pattern whatever its kind.
    Ids of POIs are negated so they never collide with ``facility`` ids.
    """
    patterns = [f"%{p}%" for p in name_patterns] or ["\x00"]
    rows = conn.execute(text(f"""
        SELECT id, name, 'facility' AS kind, ST_X(ST_Transform(geom, {METRIC_SRID})) AS x,
               ST_Y(ST_Transform(geom, {METRIC_SRID})) AS y, ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM facility WHERE type_code = :code AND status = 'existing' AND {_AREA_FILTER}
        UNION ALL
        SELECT -id, name, kind, ST_X(ST_Transform(geom, {METRIC_SRID})), ST_Y(ST_Transform(geom, {METRIC_SRID})),
               ST_X(geom), ST_Y(geom)
        FROM poi WHERE {_AREA_FILTER} AND (
              (kind = ANY(CAST(:kinds AS text[])) AND (NOT :name_required OR name ILIKE ANY(CAST(:pats AS text[]))))
              OR (name ILIKE ANY(CAST(:pats AS text[])) AND kind <> ALL(CAST(:never AS text[]))))
        ORDER BY 1"""),
        {"code": type_code, "kinds": list(poi_kinds), "pats": patterns, "name_required": name_required,
         "never": ["bus_stop", "subway_entrance", "station", "platform", "tram_stop", "traffic_signals"]
         if type_code not in ("bus_stop", "metro_station") else [],
         "area": area_wkt}).all()
    return _points(rows)


def road_stamp(conn) -> tuple[int, int]:
    """(row count, largest id) of the road table: changes when roads are loaded, added or removed."""
    row = conn.execute(text("SELECT count(*), coalesce(max(id), 0) FROM road")).one()
    return int(row[0]), int(row[1])


def road_ways(conn, exclude_kinds=("motorway", "motorway_link"), area_wkt: str | None = None,
              margin_m: float = 0.0) -> list[tuple[list[int], np.ndarray]]:
    """``(node_ids, xy metres)`` per road way (the routable Overpass network). Within ``margin_m`` of
    ``area_wkt`` when given: a box test first (the area's envelope grown by the margin, which never drops a
    way the distance test keeps), so the geography distance runs only on the ways near the area."""
    rows = conn.execute(text(f"""
        SELECT node_ids, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb FROM road
        WHERE kind <> ALL(CAST(:excl AS text[]))
          AND (CAST(:area AS text) IS NULL OR (
               geom && ST_Buffer(ST_Envelope(ST_GeomFromText(CAST(:area AS text), 4326))::geography,
                                 :margin + 1)::geometry
               AND ST_DWithin(geom::geography, ST_GeomFromText(CAST(:area AS text), 4326)::geography, :margin)))"""),
        {"excl": list(exclude_kinds), "area": area_wkt, "margin": margin_m}).all()
    return [(list(r.node_ids), shapely.get_coordinates(shapely.from_wkb(bytes(r.wkb)))) for r in rows]


@dataclass
class Area:
    """An admin unit with its boundary in metres and in WGS84."""
    code: str
    name: str
    level: str
    geom: BaseGeometry  # metres
    geom_ll: BaseGeometry  # WGS84


def areas(conn, level: str, code: str | None = None) -> list[Area]:
    """Current admin units of ``level`` with a boundary (one, when ``code`` is given)."""
    rows = conn.execute(text(f"""
        SELECT code, name, level, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb, ST_AsBinary(geom) AS wkb_ll
        FROM admin_unit WHERE level = :level AND geom IS NOT NULL AND valid_to IS NULL
          AND (CAST(:code AS text) IS NULL OR code = :code) ORDER BY code"""),
        {"level": level, "code": code}).all()
    return [Area(r.code, r.name, r.level, shapely.from_wkb(bytes(r.wkb)), shapely.from_wkb(bytes(r.wkb_ll)))
            for r in rows]


def grids(conn, community_code: str | None = None) -> list[Area]:
    """Current grids (level 'grid') of the grid builder, when its tables exist (migration 0003_grids)."""
    if not table_exists(conn, "grid"):
        return []
    rows = conn.execute(text(f"""
        SELECT code, name, level, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb, ST_AsBinary(geom) AS wkb_ll
        FROM grid WHERE level = 'grid' AND valid_to IS NULL
          AND (CAST(:c AS text) IS NULL OR community_code = :c) ORDER BY code"""), {"c": community_code}).all()
    return [Area(r.code, r.name, r.level, shapely.from_wkb(bytes(r.wkb)), shapely.from_wkb(bytes(r.wkb_ll)))
            for r in rows]


def area_by_code(conn, code: str) -> Area | None:
    """The current admin unit ``code`` with a boundary, or None."""
    rows = conn.execute(text(f"""
        SELECT code, name, level, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) AS wkb, ST_AsBinary(geom) AS wkb_ll
        FROM admin_unit WHERE code = :code AND geom IS NOT NULL AND valid_to IS NULL"""), {"code": code}).all()
    if not rows:
        return None
    r = rows[0]
    return Area(r.code, r.name, r.level, shapely.from_wkb(bytes(r.wkb)), shapely.from_wkb(bytes(r.wkb_ll)))


def data_extent(conn):
    """WGS84 envelope of the buildings (the demo city), as a shapely polygon, or None."""
    wkb = conn.execute(text("SELECT ST_AsBinary(ST_Envelope(ST_Collect(geom))) FROM building")).scalar_one()
    return None if wkb is None else shapely.from_wkb(bytes(wkb))


def existing_cameras(conn, area_wkt: str | None = None):
    """Existing cameras inside ``area_wkt`` (rows with metric x/y, heading, range, FOV, model)."""
    rows = conn.execute(text(f"""
        SELECT id, model, heading_deg, range_m, fov_deg, ST_X(ST_Transform(geom, {METRIC_SRID})) AS x,
               ST_Y(ST_Transform(geom, {METRIC_SRID})) AS y
        FROM camera WHERE status = 'existing' AND {_AREA_FILTER} ORDER BY id"""), {"area": area_wkt}).all()
    return rows


def save_result(conn, kind: str, params: dict, summary: dict) -> int:
    """Store an analysis' parameters and summary; returns the new result id."""
    return conn.execute(text("""
        INSERT INTO analysis_result (kind, params, summary)
        VALUES (:kind, CAST(:params AS jsonb), CAST(:summary AS jsonb)) RETURNING id"""),
        {"kind": kind, "params": json.dumps(params, ensure_ascii=False, default=str),
         "summary": json.dumps(summary, ensure_ascii=False, default=str)}).scalar_one()


def replace_planned_cameras(conn, community_code: str | None, cameras: list[dict]) -> int:
    """Replace the planned cameras of a community with ``cameras`` (one transaction: the caller's)."""
    conn.execute(text("DELETE FROM camera WHERE status = 'planned' AND community_code IS NOT DISTINCT FROM :c"),
                 {"c": community_code})
    for cam in cameras:
        conn.execute(text("""
            INSERT INTO camera (name, community_code, model, heading_deg, range_m, fov_deg, status, properties, geom)
            VALUES (:name, :c, :model, :heading, :range, :fov, 'planned', CAST(:props AS jsonb),
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"""),
            {"name": cam.get("name"), "c": community_code, "model": cam["model"], "heading": cam["heading_deg"],
             "range": cam["range_m"], "fov": cam["fov_deg"], "lon": cam["lon"], "lat": cam["lat"],
             "props": json.dumps(cam.get("properties", {}), ensure_ascii=False)})
    return len(cameras)


def replace_planned_facilities(conn, type_code: str, sites: list[dict], area_code: str | None = None) -> int:
    """Replace the planned facilities of a type inside the analysed area with ``sites`` (dicts with lon, lat,
    name, properties). ``area_code`` is the analysed community / township / district (its boundary bounds
    the delete); None = the whole city. Plans of other areas are kept."""
    if area_code is None:
        conn.execute(text("DELETE FROM facility WHERE status = 'planned' AND type_code = :t"), {"t": type_code})
    else:
        conn.execute(text(
            "DELETE FROM facility f USING admin_unit a WHERE f.status = 'planned' AND f.type_code = :t "
            "AND a.code = :a AND ST_Intersects(a.geom, f.geom)"), {"t": type_code, "a": area_code})
    for site in sites:
        conn.execute(text("""
            INSERT INTO facility (type_code, name, status, source, properties, geom)
            VALUES (:t, :name, 'planned', 'siting', CAST(:props AS jsonb), ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"""),
            {"t": type_code, "name": site.get("name"), "lon": site["lon"], "lat": site["lat"],
             "props": json.dumps(site.get("properties", {}), ensure_ascii=False, default=str)})
    return len(sites)


def replace_coverage_gap(conn, summary: dict, uncovered_area: dict) -> bool:
    """Store the uncovered area of a coverage result (the map page's "服务覆盖盲区" layer), replacing the
    previous one of the same type and area. Returns False (and stores nothing) when nothing is uncovered."""
    if not table_exists(conn, "coverage_gap"):
        return False
    params = {"t": summary["type_code"], "a": summary.get("community_code")}
    conn.execute(text("DELETE FROM coverage_gap WHERE type_code = :t AND area_code IS NOT DISTINCT FROM :a"), params)
    feats = uncovered_area.get("features") or []
    if not feats:
        return False
    conn.execute(text("""
        INSERT INTO coverage_gap (type_code, facility_type, radius_m, distance, area_code, covered_share,
                                  uncovered_buildings, geom)
        VALUES (:t, :ft, :r, :d, :a, :share, :unc,
                ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)), 3)))"""),
        {**params, "ft": summary["facility_type"], "r": summary["radius_m"], "d": summary["distance"],
         "share": summary["covered_share"], "unc": summary["uncovered_buildings"],
         "g": json.dumps(feats[0]["geometry"])})
    return True

