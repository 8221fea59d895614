"""Analyses the API and the CLI share: read with :mod:`siting.store`, compute with the pure core, return
plain dicts (summary + GeoJSON layers in WGS84). No HTTP and no CLI here; errors are the domain classes
of :mod:`siting.errors`: :class:`SitingInputError` (bad input, model errors included),
:class:`SitingNotFound` (no such area) or :class:`SitingDataMissing` (roads or buildings not loaded).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from geo.geojson import feature, feature_collection

from . import store
from .coverage import Coverage, line_coverage
from .errors import NetworkError, SitingDataMissing, SitingInputError, SitingNotFound
from .locate import LSCP, MCLP, PMedian, SitingResult
from .models import MODELS
from .network import RoadNetwork
from .standards import FacilityType, facility_type
from .visibility import (
    CAMERA_MODELS,
    CameraCandidates,
    candidate_cameras,
    combine,
    sector,
    visibility_coverage,
)

KEY_PLACE_KINDS = ("school", "kindergarten", "hospital", "clinic", "police", "bank", "subway_entrance",
                   "bus_station", "station", "ferry_terminal", "government", "post_office", "supermarket",
                   "mall", "attraction", "museum", "hotel", "gate", "fire_station", "embassy", "library")


_TO_LL = Transformer.from_crs(store.METRIC_SRID, 4326, always_xy=True)
_TO_METRIC = Transformer.from_crs(4326, store.METRIC_SRID, always_xy=True)


def to_lonlat(geom):
    """A shapely geometry in metres (EPSG:32651) → WGS84 lon/lat."""
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_LL.transform(xy[:, 0], xy[:, 1])))


def to_metric(lonlat) -> np.ndarray:
    """WGS84 lon/lat points, ``(n, 2)`` → metres (EPSG:32651), ``(n, 2)``."""
    ll = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    return np.column_stack(_TO_METRIC.transform(ll[:, 0], ll[:, 1]))


def _clean(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else round(float(v), 2)
    if isinstance(v, float):
        return None if not np.isfinite(v) else round(v, 2)
    return v


def jsonable(obj):
    """Plain-Python copy (numpy scalars → int/float, tuples → lists) safe for JSON responses."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


def _resolve_type(type_key: str) -> FacilityType:
    try:
        return facility_type(type_key)
    except KeyError as exc:
        raise SitingInputError(exc.args[0]) from None


#: the largest polygon a planner may draw as an analysis area (km²)
MAX_DRAWN_KM2 = 200.0


def drawn_area(geojson: dict) -> store.Area:
    """A polygon drawn on the map (GeoJSON, WGS84) as an analysis area; ``SitingInputError`` if unusable."""
    try:
        geom = shapely.geometry.shape(geojson)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SitingInputError(f"绘制范围不是有效的 GeoJSON 面 (the drawn area is not a GeoJSON polygon: {exc})") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise SitingInputError(f"绘制范围必须是面 (the drawn area must be a polygon, got {geom.geom_type})")
    geom = shapely.make_valid(geom)
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise SitingInputError("绘制范围坐标不是经纬度 (the drawn area is not in lon/lat degrees)")
    metric = shapely.transform(geom, lambda xy: to_metric(xy))
    if metric.area <= 0 or metric.area > MAX_DRAWN_KM2 * 1e6:
        raise SitingInputError(f"绘制范围面积须在 0–{MAX_DRAWN_KM2:g} 平方公里 (area must be in (0, {MAX_DRAWN_KM2:g}] km²)")
    return store.Area("drawn", "绘制范围", "drawn", metric, geom)


def _resolve_area(conn, code: str | None, drawn: dict | None = None):
    if drawn is not None:
        return drawn_area(drawn)
    if code is None:
        return None
    area = store.area_by_code(conn, code)
    if area is None:
        raise SitingNotFound(f"行政区划 {code} 不存在或没有边界 (no admin unit with this code and a boundary)")
    return area


#: walking networks built recently, per process: (database, area, margin, road-table stamp) → network
_NETWORKS: OrderedDict[tuple, tuple[float, RoadNetwork]] = OrderedDict()
_NETWORKS_LOCK = threading.Lock()
NETWORK_CACHE_SIZE = 8
NETWORK_CACHE_TTL_S = 600.0


def road_network(conn, area_wkt: str | None = None, margin_m: float = 1500.0) -> RoadNetwork:
    """The walking network of the DB roads around ``area_wkt`` (all of them when None).

    Building it from the road table is about half the time of a city-wide coverage request, so the last
    few networks are kept per process, keyed by the road table's row count and largest id (an import or a
    new road changes them) and for at most ten minutes (an edit of an existing road's geometry shows
    after that)."""
    from geo.pg import db_key

    stamp = store.road_stamp(conn)
    key = (db_key(conn), area_wkt, round(float(margin_m), 1), stamp)
    now = time.monotonic()
    with _NETWORKS_LOCK:
        hit = _NETWORKS.get(key)
        if hit is not None and now - hit[0] < NETWORK_CACHE_TTL_S:
            _NETWORKS.move_to_end(key)
            return hit[1]
    ways = store.road_ways(conn, area_wkt=area_wkt, margin_m=margin_m)
    if not ways:
        raise SitingDataMissing("数据库中没有道路网络 (no road network loaded: run `shequ demo load`)")
    net = RoadNetwork.from_ways(ways)
    with _NETWORKS_LOCK:
        _NETWORKS[key] = (now, net)
        _NETWORKS.move_to_end(key)
        while len(_NETWORKS) > NETWORK_CACHE_SIZE:
            _NETWORKS.popitem(last=False)
    return net


def households_in(points, polygons: list, hh: np.ndarray, covered_hh: np.ndarray):
    """Per polygon: the households and the covered households of the points it contains; and whether each
    point lies in any polygon. One bulk STRtree query: a `contains` of every point per polygon was
    O(polygons × buildings) — 17,600 grids × 314,000 buildings at 10^7 addresses."""
    from shapely.strtree import STRtree

    n = len(polygons)
    in_any = np.zeros(len(points), bool)
    if n == 0 or len(points) == 0:
        return np.zeros(n), np.zeros(n), in_any
    poly_i, pt_i = STRtree(points).query(np.asarray(polygons, dtype=object), predicate="contains")
    in_any[pt_i] = True
    return (np.bincount(poly_i, weights=hh[pt_i], minlength=n),
            np.bincount(poly_i, weights=covered_hh[pt_i], minlength=n), in_any)


def compute_coverage(conn, demand_xy, site_xy, radius_m: float, distance: str, area_wkt=None,
                     network: RoadNetwork | None = None, max_snap_m: float | None = None) -> Coverage:
    """Demand × site pairs within ``radius_m`` by straight line or by walking over the road network."""
    if radius_m is None or not np.isfinite(radius_m) or radius_m <= 0:
        raise SitingInputError(f"服务半径必须大于 0 (radius must be > 0, got {radius_m})")
    if distance == "line":
        return line_coverage(demand_xy, site_xy, radius_m)
    if distance != "walk":
        raise SitingInputError(f"distance 只能是 walk 或 line (got {distance!r})")
    if len(site_xy) == 0 or len(demand_xy) == 0:
        return Coverage.from_pairs([], [], [], len(demand_xy), len(site_xy))
    net = network or road_network(conn, area_wkt, margin_m=radius_m + 500)
    try:
        site_snap = net.snap(site_xy, max_snap_m)
    except NetworkError as exc:
        raise SitingInputError(f"候选点不在道路网络上 (sites outside the network): {exc}") from None
    try:
        demand_snap = net.snap(demand_xy, max_snap_m)
    except NetworkError as exc:
        raise SitingInputError(f"需求点不在道路网络上 (demand outside the network): {exc}") from None
    return net.distances_snapped(demand_snap, site_snap, radius_m)


def _summary_areas(conn, area):
    """Areas to summarise by: the chosen one, else communities, else districts (said in the note)."""
    if area is not None:
        return [area], area.level, None
    comm = store.areas(conn, "community")
    if comm:
        return comm, "community", None
    dist = store.areas(conn, "district")
    return dist, "district", "尚无社区边界（先运行 shequ grid boundaries），按区汇总 (no communities yet: summarised by district)"


# ---------------------------------------------------------------------------------------- coverage


def coverage_analysis(conn, type_key: str, distance: str | None = None, radius_m: float | None = None,
                      community_code: str | None = None, include_buildings: bool = True,
                      area_geojson: dict | None = None) -> dict:
    """Households covered by the facilities of a type: summary per area and grid, GeoJSON layers."""
    t0 = time.perf_counter()
    ft = _resolve_type(type_key)
    radius = float(radius_m if radius_m is not None else ft.radius_m)
    distance = distance or ft.distance
    area = _resolve_area(conn, community_code, area_geojson)
    area_wkt = area.geom_ll.wkt if area else None
    demand, footprints = store.residential_buildings(conn, area_wkt)
    if len(demand) == 0:
        raise SitingInputError("范围内没有住户（households_est > 0 的建筑）(no households in the area)")
    fac = store.existing_facilities(conn, ft.code, ft.poi_kinds, ft.name_patterns, ft.name_required)
    cov = compute_coverage(conn, demand.xy, fac.xy, radius, distance, area_wkt)
    site_of, dist = cov.nearest(np.arange(len(fac)))
    covered = site_of >= 0
    hh = demand.weight
    catch = np.bincount(site_of[covered], weights=hh[covered], minlength=len(fac))
    # per area
    areas, level, note = _summary_areas(conn, area)
    by_area = []
    pts = shapely.points(demand.xy)
    cov_hh = np.where(covered, hh, 0.0)
    if len(areas) > 1 or area is None:
        a_tot, a_cov, in_any = households_in(pts, [a.geom for a in areas], hh, cov_hh)
    else:  # the one area asked for holds every building read for it
        a_tot, a_cov, in_any = np.full(len(areas), hh.sum()), np.full(len(areas), cov_hh.sum()), np.ones(len(pts), bool)
    for a, tot, cov_w in zip(areas, a_tot, a_cov, strict=True):
        if tot == 0:
            continue
        by_area.append({"code": a.code, "name": a.name, "level": a.level, "households": int(tot),
                        "covered_households": int(cov_w), "covered_share": round(float(cov_w / tot), 4)})
    if areas and area is None:
        # households in no area of this level (e.g. outside every provisional community) are reported
        # in their own row, so the rows add up to the total
        rest = float(hh[~in_any].sum())
        if rest > 0:
            cov_w = float(hh[~in_any & covered].sum())
            by_area.append({"code": None, "name": "未划入" + {"community": "社区", "district": "区"}.get(level, "区域"),
                            "level": level, "households": int(rest), "covered_households": int(cov_w),
                            "covered_share": round(cov_w / rest, 4)})
    by_grid = []
    grids = store.grids(conn, community_code if area is not None and area.level == "community" else None)
    g_tot, g_cov, _ = households_in(pts, [g.geom for g in grids], hh, cov_hh)
    for g, tot, cov_w in zip(grids, g_tot, g_cov, strict=True):
        if tot > 0:
            by_grid.append({"code": g.code, "name": g.name, "households": int(tot),
                            "covered_households": int(cov_w), "covered_share": round(float(cov_w / tot), 4)})
    total = float(hh.sum())
    summary = {
        "facility_type": ft.name, "type_code": ft.code, "radius_m": radius, "distance": distance,
        "clause": ft.clause, "facilities": len(fac), "buildings": len(demand),
        "households": int(total), "covered_households": int(hh[covered].sum()),
        "covered_share": round(float(hh[covered].sum() / total), 4) if total else 0.0,
        "uncovered_buildings": int((~covered).sum()), "area_level": level, "by_area": by_area,
        "by_grid": by_grid,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if note:
        summary["note"] = note
    if community_code:
        summary["community_code"] = community_code
    # layers
    fac_features = [
        feature(shapely.Point(fac.lonlat[j]), {"id": int(fac.id[j]), "name": fac.name[j], "kind": fac.kind[j],
                                                "catchment_households": int(catch[j])})
        for j in range(len(fac))
    ]
    uncovered_fp = [footprints[i][0] for i in np.flatnonzero(~covered)]
    unc_area = shapely.unary_union([shapely.buffer(g, 15.0) for g in uncovered_fp]) if uncovered_fp else None
    if unc_area is not None and area is not None:
        unc_area = shapely.intersection(unc_area, area.geom)
    unc_feats = []
    if unc_area is not None and not unc_area.is_empty:
        unc_feats = [feature(to_lonlat(unc_area), {"kind": "uncovered_area", "area_m2": round(unc_area.area, 1)})]
        summary["uncovered_area_m2"] = round(unc_area.area, 1)
    layers = {"facilities": feature_collection(fac_features), "uncovered_area": feature_collection(unc_feats)}
    bld = []
    for i in range(len(demand)):
        if not include_buildings and covered[i]:
            continue
        bld.append(feature(footprints[i][1], {
            "id": int(demand.id[i]), "name": demand.name[i], "households": int(hh[i]), "covered": bool(covered[i]),
            "distance_m": _clean(dist[i]), "facility_id": int(fac.id[site_of[i]]) if covered[i] else None,
        }))
    layers["buildings" if include_buildings else "uncovered_buildings"] = feature_collection(bld)
    return jsonable({"summary": summary, "layers": layers})


# ------------------------------------------------------------------------------------------ siting


def intersections(net: RoadNetwork, min_degree: int = 3) -> np.ndarray:
    """Nodes of the main component where at least ``min_degree`` edges meet."""
    deg = np.bincount(np.concatenate([net.edge_u, net.edge_v]), minlength=net.n_nodes)
    main = np.zeros(net.n_nodes, bool)
    main[net.edge_u[net.main_edges]] = True
    return np.flatnonzero((deg >= min_degree) & main)


def siting_analysis(conn, type_key: str, model: str = "mclp", new_sites: int | None = None, p: int | None = None,
                    distance: str | None = None, radius_m: float | None = None, candidates=("buildings",),
                    community_code: str | None = None, keep_existing: bool = True, method: str = "auto",
                    time_limit_s: float = 60.0, points=None) -> dict:
    """Next sites of a facility type on the DB data (existing ones kept): summary and a sites layer.

    ``points`` (candidate kind "points"): posted candidate sites, ``(n, 2)`` WGS84 lon/lat."""
    t0 = time.perf_counter()
    ft = _resolve_type(type_key)
    radius = float(radius_m if radius_m is not None else ft.radius_m)
    distance = distance or ft.distance
    if model not in ("lscp", "mclp", "pmedian"):
        raise SitingInputError(f"model 只能是 lscp、mclp 或 pmedian (got {model!r})")
    area = _resolve_area(conn, community_code)
    area_wkt = area.geom_ll.wkt if area else None
    demand, _ = store.residential_buildings(conn, area_wkt)
    if len(demand) == 0:
        raise SitingInputError("范围内没有住户 (no households in the area)")
    fixed_pts = store.existing_facilities(conn, ft.code, ft.poi_kinds, ft.name_patterns, ft.name_required) \
        if keep_existing else store.Points.empty()
    net = road_network(conn, area_wkt, margin_m=radius + 500) if (distance == "walk" or "intersections" in candidates) else None
    parts = [fixed_pts]
    for c in candidates:
        if c == "buildings":
            parts.append(store.building_points(conn, area_wkt))
        elif c == "intersections":
            assert net is not None  # built above whenever intersections are asked for
            nodes = intersections(net)
            xy = net.node_xy[nodes]
            if area is not None:
                nodes, xy = nodes[shapely.contains(area.geom, shapely.points(xy))], xy[shapely.contains(area.geom, shapely.points(xy))]
            else:  # around the demand only
                hull = shapely.convex_hull(shapely.multipoints(demand.xy)).buffer(radius)
                keep = shapely.contains(hull, shapely.points(xy))
                nodes, xy = nodes[keep], xy[keep]
            ll = np.column_stack(_TO_LL.transform(xy[:, 0], xy[:, 1])) if len(xy) else np.zeros((0, 2))
            parts.append(store.Points(net.node_key[nodes], [None] * len(nodes), ["intersection"] * len(nodes),
                                      xy, ll, np.ones(len(nodes))))
        elif c == "points":
            ll = np.asarray(points if points is not None else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
            if len(ll) == 0:
                raise SitingInputError("候选点类型 points 需要上传的候选点 (candidates 'points' needs posted points)")
            parts.append(store.Points(np.arange(1, len(ll) + 1), [None] * len(ll), ["point"] * len(ll),
                                      to_metric(ll), ll, np.ones(len(ll))))
        else:
            raise SitingInputError(f"未知候选点类型 {c!r} (candidates: buildings, intersections, points)")
    sites = store.Points.concat(*parts)
    n_fixed = len(fixed_pts)
    if len(sites) == 0:
        raise SitingInputError("没有候选点 (no candidate sites)")
    if new_sites is not None:
        if new_sites < 0:
            raise SitingInputError("new_sites 必须 ≥ 0")
        p = n_fixed + int(new_sites)
    cov = compute_coverage(conn, demand.xy, sites.xy, radius, distance, area_wkt, network=net)
    fixed = np.arange(n_fixed)
    m: LSCP | MCLP | PMedian
    if model == "lscp":
        m = LSCP(cov, weights=demand.weight, fixed=fixed, skip_uncoverable=True)
    elif p is None:
        raise SitingInputError("mclp / pmedian 需要 p 或 new_sites (p or new_sites is required)")
    elif model == "mclp":
        m = MCLP(cov, p, weights=demand.weight, fixed=fixed)
    else:
        m = PMedian(cov, p, weights=demand.weight, fixed=fixed)
    res = m.solve(method=method, time_limit=time_limit_s)
    before = cov.cover_count(fixed) > 0 if n_fixed else np.zeros(len(demand), bool)
    new = [int(s) for s in res.sites if s >= n_fixed]
    site_of, _ = cov.nearest(res.sites)
    gain = np.bincount(site_of[(site_of >= 0) & ~before], weights=demand.weight[(site_of >= 0) & ~before],
                       minlength=len(sites))
    total = float(demand.weight.sum())
    summary = {
        "facility_type": ft.name, "type_code": ft.code, "model": model, "method": res.method, "status": res.status,
        "radius_m": radius, "distance": distance, "clause": ft.clause, "existing": n_fixed,
        "candidates": len(sites) - n_fixed, "p": p, "new_sites": len(new), "objective": _clean(res.objective),
        "gap": None if res.gap is None else round(res.gap, 6),
        "households": int(total), "covered_before": int(demand.weight[before].sum()),
        "covered_after": int(res.covered_weight),
        "covered_share_before": round(float(demand.weight[before].sum()) / total, 4) if total else 0.0,
        "covered_share_after": round(res.covered_share, 4), "uncoverable_buildings": int(res.uncoverable.size),
        "solve_seconds": round(res.seconds, 3), "seconds": round(time.perf_counter() - t0, 3),
        "community_code": community_code,
    }
    feats = [feature(shapely.Point(sites.lonlat[j]), {
        "site": j, "id": int(sites.id[j]), "kind": sites.kind[j], "name": sites.name[j],
        "status": "existing" if j < n_fixed else "planned", "new_households_covered": int(gain[j])})
        for j in res.sites]
    return jsonable({"summary": summary, "layers": {"sites": feature_collection(feats)}})


def solve_points(conn, model: str, demand_ll, site_ll, radius_m: float, distance: str = "line", p: int | None = None,
                 weights=None, fixed=(), capacity=None, method: str = "auto", time_limit_s: float = 60.0,
                 max_snap_m: float = 250.0) -> SitingResult:
    """A location model on given WGS84 points (``(n, 2)`` lon/lat): coverage by line or walking distance, solved."""
    demand_xy, site_xy = to_metric(demand_ll), to_metric(site_ll)
    cov = compute_coverage(conn, demand_xy, site_xy, radius_m, distance, max_snap_m=max_snap_m)
    kw = {"weights": weights, "fixed": fixed, "capacity": capacity}
    m = MODELS[model](cov, **kw) if model == "lscp" else MODELS[model](cov, p, **kw)
    return m.solve(method=method, time_limit=time_limit_s)


# ----------------------------------------------------------------------------------------- cameras


@dataclass
class CameraPlanInput:
    """The area a camera plan covers (metres), with its code, name, level and a note on how it was chosen."""
    area_code: str | None
    area_name: str
    area_level: str
    area: BaseGeometry  # metres
    note: str | None


def camera_area(conn, community_code: str | None, window_m: float = 600.0) -> CameraPlanInput:
    """The area of a camera plan: the community asked for, else the first community, else a district window."""
    if community_code:
        a = _resolve_area(conn, community_code)
        return CameraPlanInput(a.code, a.name, a.level, a.geom, None)
    comm = store.areas(conn, "community")
    if comm:  # the community with the most households-bearing buildings is the most telling demo
        a = comm[0]
        return CameraPlanInput(a.code, a.name, a.level, a.geom, "未指定社区，取第一个社区 (first community)")
    ext = store.data_extent(conn)
    if ext is None:
        raise SitingDataMissing("没有建筑数据 (no buildings loaded)")
    centre_ll = ext.centroid
    dists = store.areas(conn, "district")
    cx, cy = _TO_METRIC.transform(centre_ll.x, centre_ll.y)
    win = shapely.box(cx - window_m / 2, cy - window_m / 2, cx + window_m / 2, cy + window_m / 2)
    for d in dists:
        if d.geom.intersects(win):
            return CameraPlanInput(d.code, d.name, "district", d.geom.intersection(win),
                                   f"尚无社区边界，改用{d.name}（{d.code}）在演示区中心的 {window_m:g} m 窗口 "
                                   "(no communities yet: a window of the district instead)")
    return CameraPlanInput(None, "演示区", "window", win, "无行政区边界，使用演示区中心窗口 (no admin units: demo-area window)")


def _road_samples(ways, area, step_m: float):
    lines = [shapely.LineString(xy) for _, xy in ways]
    clipped = [g for g in shapely.intersection(lines, area) if not g.is_empty]
    out = []
    for g in clipped:
        for part in getattr(g, "geoms", [g]):
            if part.geom_type != "LineString" or part.length == 0:
                continue
            d = np.arange(step_m / 2, part.length, step_m)
            if d.size:
                out.append(shapely.get_coordinates(shapely.line_interpolate_point(part, d)))
    return np.concatenate(out) if out else np.zeros((0, 2))


def _building_corners(footprints, area, offset_m: float = 1.0, simplify_m: float = 2.0) -> np.ndarray:
    """Wall-mount positions: the corners of (simplified) footprints in the area, 1 m out from the wall."""
    out = []
    for g in footprints:
        if not g.intersects(area):
            continue
        for poly in getattr(g, "geoms", [g]):
            ring = np.asarray(poly.simplify(simplify_m).exterior.coords)[:-1]
            if len(ring) == 0:
                continue
            c = np.asarray(poly.centroid.coords[0])
            v = ring - c
            out.append(ring + v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9) * offset_m)
    if not out:
        return np.zeros((0, 2))
    xy = np.concatenate(out)
    return xy[shapely.contains(area, shapely.points(xy))]


def camera_plan(conn, community_code: str | None = None, model: str = "bullet-6mm", headings: int = 8,
                pole_spacing_m: float = 30.0, sample_step_m: float = 25.0, k: int | None = None,
                method: str = "auto", time_limit_s: float = 60.0, window_m: float = 600.0,
                building_corners: bool = False) -> dict:
    """Cameras (positions and headings) covering the key places, entrances and roads of an area."""
    t0 = time.perf_counter()
    if model not in CAMERA_MODELS:
        raise SitingInputError(f"未知摄像机型号 {model!r}；可选：{', '.join(CAMERA_MODELS)}")
    if headings < 1 or pole_spacing_m <= 0 or sample_step_m <= 0:
        raise SitingInputError("headings ≥ 1, spacing > 0")
    cam_model = CAMERA_MODELS[model]
    pa = camera_area(conn, community_code, window_m)
    area_ll = to_lonlat(pa.area)
    area_wkt = area_ll.wkt
    ways = store.road_ways(conn, area_wkt=area_wkt, margin_m=0.0)
    # targets: key places (5), entrances (3), road samples (1)
    places = store.pois(conn, list(KEY_PLACE_KINDS), area_wkt)
    places.weight[:] = 5.0
    entr = store.entrance_points(conn, area_wkt)
    entr.weight[:] = 3.0
    samples = _road_samples(ways, pa.area, sample_step_m)
    s_ll = np.column_stack(_TO_LL.transform(samples[:, 0], samples[:, 1])) if len(samples) else np.zeros((0, 2))
    road_pts = store.Points(np.arange(len(samples)), [None] * len(samples), ["road_sample"] * len(samples),
                            samples, s_ll, np.ones(len(samples)))
    targets = store.Points.concat(places, entr, road_pts)
    if len(targets) == 0:
        raise SitingInputError("范围内没有需要覆盖的目标点 (no targets in the area)")
    # candidates: street-pole positions along roads, existing cameras fixed
    poles = _road_samples(ways, pa.area, pole_spacing_m)
    occluders = store.building_footprints(conn, area_wkt, margin_m=cam_model.range_m)
    if building_corners:
        poles = np.concatenate([poles, _building_corners(occluders, pa.area)])
    if len(poles) == 0:
        raise SitingInputError("范围内没有道路，无法布设摄像机 (no roads in the area for camera poles)")
    new = candidate_cameras(poles, headings=headings, model=cam_model)
    rows = store.existing_cameras(conn, area_wkt)
    if rows:
        old = CameraCandidates(np.array([[r.x, r.y] for r in rows]), np.arange(len(rows)),
                               np.array([r.heading_deg for r in rows]), np.array([r.range_m for r in rows]),
                               np.array([r.fov_deg for r in rows]), np.array([r.model for r in rows], dtype=object))
        cands = combine(old, new)
    else:
        cands = new
    n_fixed = len(rows)
    cov = visibility_coverage(targets.xy, cands, occluders)
    if k is None:
        res = LSCP(cov, weights=targets.weight, fixed=np.arange(n_fixed), skip_uncoverable=True).solve(
            method=method, time_limit=time_limit_s)
    else:
        res = MCLP(cov, n_fixed + k, weights=targets.weight, fixed=np.arange(n_fixed)).solve(
            method=method, time_limit=time_limit_s)
    seen = cov.cover_count(res.sites) > 0
    seen_by = np.bincount(cov.nearest(res.sites)[0][seen], minlength=len(cands))
    cams, sectors = [], []
    for n, j in enumerate(res.sites):
        xy = cands.xy[j]
        lon, lat = _TO_LL.transform(xy[0], xy[1])
        props = {"camera": n + 1, "status": "existing" if j < n_fixed else "planned", "model": str(cands.model[j]),
                 "heading_deg": float(cands.heading_deg[j]), "range_m": float(cands.range_m[j]),
                 "fov_deg": float(cands.fov_deg[j]), "lon": round(lon, 7), "lat": round(lat, 7),
                 "targets_seen": int(seen_by[j])}
        cams.append(feature(shapely.Point(lon, lat), props))
        sectors.append(feature(to_lonlat(sector(xy, cands.heading_deg[j], cands.range_m[j], cands.fov_deg[j])), props))
    blind = [feature(shapely.Point(targets.lonlat[i]), {"kind": targets.kind[i], "name": targets.name[i],
                                                         "weight": float(targets.weight[i])})
             for i in np.flatnonzero(~seen)]
    total_w = float(targets.weight.sum())
    summary = {
        "area_code": pa.area_code, "area_name": pa.area_name, "area_level": pa.area_level,
        "area_m2": round(pa.area.area, 1), "model": model, "range_m": cam_model.range_m, "fov_deg": cam_model.fov_deg,
        "headings": headings, "objective": "lscp" if k is None else "mclp", "method": res.method,
        "gap": None if res.gap is None else round(res.gap, 6),
        "targets": len(targets), "key_places": len(places), "entrances": len(entr), "road_samples": len(samples),
        "candidate_positions": len(poles), "candidates": len(cands), "existing_cameras": n_fixed,
        "cameras": int(len(res.sites)), "planned_cameras": int(sum(1 for j in res.sites if j >= n_fixed)),
        "seen_targets": int(seen.sum()), "blind_spots": int((~seen).sum()),
        "seen_share": round(float(targets.weight[seen].sum()) / total_w, 4) if total_w else 0.0,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if pa.note:
        summary["note"] = pa.note
    return jsonable({"summary": summary, "layers": {
        "area": feature_collection([feature(area_ll, {"code": pa.area_code, "name": pa.area_name})]),
        "cameras": feature_collection(cams), "sectors": feature_collection(sectors), "blind_spots": feature_collection(blind)}})


def save_planned_sites(conn, result: dict) -> int:
    """Store the new sites of a :func:`siting_analysis` result as planned facilities of its type."""
    s = result["summary"]
    sites = []
    for f in result["layers"]["sites"]["features"]:
        pr = f["properties"]
        if pr["status"] != "planned":
            continue
        lon, lat = f["geometry"]["coordinates"]
        sites.append({"lon": lon, "lat": lat, "name": f"规划{s['facility_type']}（{pr['kind']} {pr['id']}）",
                      "properties": {"model": s["model"], "radius_m": s["radius_m"], "distance": s["distance"],
                                     "new_households_covered": pr["new_households_covered"],
                                     "candidate": {"kind": pr["kind"], "id": pr["id"]}}})
    return store.replace_planned_facilities(conn, s["type_code"], sites, s.get("community_code"))


# -------------------------------------------------------------------------------------- isochrones


#: the most facilities one isochrone request may draw
MAX_ISOCHRONE_FACILITIES = 500


def isochrone_analysis(conn, type_key: str, minutes=(5, 10, 15), speed_m_per_min: float | None = None,
                       buffer_m: float = 50.0, community_code: str | None = None, progress=None) -> dict:
    """5 / 10 / 15-minute walking isochrones of the existing facilities of a type: a GeoJSON layer (WGS84)."""
    from .isochrones import WALK_M_PER_MIN, isochrones

    t0 = time.perf_counter()
    ft = _resolve_type(type_key)
    area = _resolve_area(conn, community_code)
    area_wkt = area.geom_ll.wkt if area else None
    fac = store.existing_facilities(conn, ft.code, ft.poi_kinds, ft.name_patterns, ft.name_required, area_wkt)
    if len(fac) == 0:
        raise SitingInputError(f"范围内没有现有{ft.name} (no existing {ft.code} in the area)")
    if len(fac) > MAX_ISOCHRONE_FACILITIES:
        raise SitingInputError(f"设施过多：{len(fac)} > {MAX_ISOCHRONE_FACILITIES}，请缩小范围 (too many facilities)")
    speed = float(speed_m_per_min or WALK_M_PER_MIN)
    net = road_network(conn, area_wkt, margin_m=max(minutes) * speed + 500)
    if progress is not None:
        progress(0.2, "路网已加载 network loaded")
    polys = isochrones(net, fac.xy, minutes, speed, buffer_m)
    feats = [feature(to_lonlat(iso.geom), {
        "facility_id": int(fac.id[iso.facility]), "name": fac.name[iso.facility], "minutes": iso.minutes,
        "distance_m": round(iso.distance_m, 1), "area_m2": round(iso.geom.area, 1)}) for iso in polys]
    feats.sort(key=lambda f: -f["properties"]["minutes"])  # largest first: smaller ones draw on top
    summary = {"facility_type": ft.name, "type_code": ft.code, "facilities": len(fac), "minutes": sorted(minutes),
               "speed_m_per_min": speed, "buffer_m": buffer_m, "method": "network buffer of reached edges",
               "isochrones": len(feats), "seconds": round(time.perf_counter() - t0, 3)}
    if community_code:
        summary["community_code"] = community_code
    facilities = [feature(shapely.Point(fac.lonlat[j]), {"id": int(fac.id[j]), "name": fac.name[j]})
                  for j in range(len(fac))]
    return jsonable({"summary": summary, "layers": {"isochrones": feature_collection(feats),
                                                     "facilities": feature_collection(facilities)}})
