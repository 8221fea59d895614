"""Province-wide coverage of one facility type on Dask (issue 14 §3): one partition per district.

A partition is a district's residential buildings (each building in exactly one partition: the first, by
code, whose boundary covers its point on the footprint) with the facilities and the walking network within
reach of them: facilities within ``radius_m`` (+ ``HALO_M``) of the district and the road ways within
``radius_m`` + ``HALO_M`` of it — the same margin `siting.service.coverage_analysis` takes round one area.
Any facility a building can reach within the radius lies inside that halo, so a district's answers do not
depend on the other districts.

:func:`coverage_partition` is the pure core (numpy / shapely / scipy, no connection): it takes a
:class:`CoveragePartition` of plain arrays and returns plain arrays. The driver reads each partition from
PostGIS (:func:`read_partitions`, the store functions `shequ coverage` uses) and hands it to the cluster as it
reads; the workers open no database connection (why: see :mod:`grid_builder.province`). ``workers=0`` runs
the partitions in this process: the single-process reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from geo.cluster import check_reader, run_partitions

from . import store
from .errors import SitingInputError
from .network import RoadNetwork
from .service import _resolve_type, compute_coverage, to_lonlat

#: extra reach round a district beyond the radius (metres): facilities and roads a walk may use
HALO_M = 500.0


@dataclass(frozen=True)
class CoveragePartition:
    """One district's inputs, plain arrays in metres (EPSG:32651)."""

    code: str
    name: str
    building_id: np.ndarray  # int64
    demand_xy: np.ndarray  # (n, 2)
    households: np.ndarray  # float64
    site_id: np.ndarray  # int64 (POIs negated, as siting.store gives them)
    site_xy: np.ndarray  # (m, 2)
    ways: list[tuple[list[int], np.ndarray]] | None  # the walking network round it (None: straight line)


def coverage_partition(part: CoveragePartition, radius_m: float, distance: str) -> dict[str, Any]:
    """Each building's nearest facility within ``radius_m`` (by ``distance``: walk | line) — a Dask task.

    Returns {code, name, building_id, covered, distance_m (NaN when not covered), facility_id (0 when not
    covered), households, covered_households}."""
    network = RoadNetwork.from_ways(part.ways) if distance == "walk" and part.ways else None
    if distance == "walk" and network is None and len(part.site_xy) and len(part.demand_xy):
        raise SitingInputError(f"{part.code} 周边没有道路网络 (no road network round district {part.code})")
    cov = compute_coverage(None, part.demand_xy, part.site_xy, radius_m, distance, network=network)
    site_of, dist = cov.nearest(np.arange(len(part.site_xy)))
    covered = site_of >= 0
    return {
        "code": part.code,
        "name": part.name,
        "building_id": part.building_id,
        "covered": covered,
        "distance_m": np.where(covered, dist, np.nan),
        "facility_id": np.where(covered, part.site_id[np.maximum(site_of, 0)], 0) if len(part.site_id)
        else np.zeros(len(covered), dtype=np.int64),
        "households": float(part.households.sum()),
        "covered_households": float(part.households[covered].sum()),
    }


def partition_codes(conn: Any, codes: Sequence[str] | None = None, level: str = "district") -> list[str]:
    """``codes``, else every current unit of ``level`` with a boundary."""
    if codes:
        return list(dict.fromkeys(codes))
    return [a.code for a in store.areas(conn, level)]


def read_partitions(engine: Engine, type_key: str, radius_m: float, distance: str,
                    codes: Sequence[str], level: str = "district") -> Iterator[CoveragePartition]:
    """Each district's inputs from PostGIS, one district at a time, in code order. A building is read by
    every district its footprint touches and kept by the first (by code) whose boundary covers its point."""
    with engine.connect() as conn:
        areas = [a for a in store.areas(conn, level) if a.code in set(codes)]
    missing = set(codes) - {a.code for a in areas}
    if missing:
        raise SitingInputError(f"没有这些{level}: {sorted(missing)} (no such admin units with a boundary)")
    for i, a in enumerate(areas):
        yield read_partition(engine, type_key, radius_m, distance, a, [b.geom for b in areas[:i]])


def read_partition(engine: Engine, type_key: str, radius_m: float, distance: str, area: store.Area,
                   earlier: Sequence[BaseGeometry]) -> CoveragePartition:
    """One district's inputs: its buildings whose point it covers and no ``earlier`` district does, the
    facilities and the road ways within ``radius_m`` + HALO_M of it."""
    ft = _resolve_type(type_key)
    reach = to_lonlat(shapely.buffer(area.geom, radius_m + HALO_M)).wkt
    with engine.connect() as conn:
        demand, _footprints = store.residential_buildings(conn, area.geom_ll.wkt)
        fac = store.existing_facilities(conn, ft.code, ft.poi_kinds, ft.name_patterns, ft.name_required,
                                        area_wkt=reach)
        ways = store.road_ways(conn, area_wkt=area.geom_ll.wkt, margin_m=radius_m + HALO_M) \
            if distance == "walk" else None
    pts = shapely.points(demand.xy) if len(demand) else np.zeros(0, dtype=object)
    mine = shapely.covers(area.geom, pts) if len(demand) else np.zeros(0, bool)
    for g in earlier:
        if len(demand):
            mine &= ~shapely.covers(g, pts)
    return CoveragePartition(area.code, area.name, demand.id[mine], demand.xy[mine], demand.weight[mine],
                             fac.id, fac.xy, ways)


def coverage_from_db(code: str, type_key: str, radius_m: float, distance: str, codes: Sequence[str],
                     level: str = "district") -> dict[str, Any]:
    """A worker reads its own district (``DATABASE_URL`` of its environment; ``codes``: every partition, for the
    rule that gives a boundary building to the first district) and computes it (a Dask task)."""
    from geo.cluster import worker_engine

    engine = worker_engine()
    with engine.connect() as conn:
        areas = [a for a in store.areas(conn, level) if a.code in set(codes)]
    i = [a.code for a in areas].index(code)
    part = read_partition(engine, type_key, radius_m, distance, areas[i], [b.geom for b in areas[:i]])
    return coverage_partition(part, radius_m, distance)


def partitions_in_memory(
    areas: Sequence[tuple[str, str, BaseGeometry]],
    building_id: np.ndarray,
    demand_xy: np.ndarray,
    households: np.ndarray,
    site_id: np.ndarray,
    site_xy: np.ndarray,
    ways: list[tuple[list[int], np.ndarray]] | None,
    radius_m: float,
) -> list[CoveragePartition]:
    """The partitions of in-memory data by the rules :func:`read_partitions` applies in PostGIS (pure):
    ``areas`` are (code, name, boundary in metres); a building goes to the first area covering its point;
    each area gets the sites and ways within ``radius_m`` + ``HALO_M`` of it."""
    pts = shapely.points(np.asarray(demand_xy, dtype=float).reshape(-1, 2))
    sites = shapely.points(np.asarray(site_xy, dtype=float).reshape(-1, 2))
    lines = [shapely.LineString(xy) for _ids, xy in ways] if ways is not None else []
    free = np.ones(len(pts), bool)
    out = []
    for code, name, geom in areas:
        mine = free & shapely.covers(geom, pts)
        free &= ~mine
        near = shapely.dwithin(geom, sites, radius_m + HALO_M) if len(sites) else np.zeros(0, bool)
        part_ways = None
        if ways is not None:
            keep = shapely.dwithin(geom, lines, radius_m + HALO_M) if lines else np.zeros(0, bool)
            part_ways = [w for w, k in zip(ways, keep, strict=True) if k]
        out.append(CoveragePartition(code, name, building_id[mine], demand_xy[mine], households[mine],
                                     site_id[near], site_xy[near], part_ways))
    return out


def coverage_province(
    engine: Engine,
    type_key: str,
    *,
    distance: str | None = None,
    radius_m: float | None = None,
    codes: Sequence[str] | None = None,
    level: str = "district",
    reader: str = "driver",
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """Coverage of a facility type over every district (or ``codes``), partitioned by district, on Dask.

    Returns {summary: {facility_type, type_code, radius_m, distance, partitions, buildings, households,
    covered_households, covered_share, by_area: [...]}, buildings: {building_id, covered, distance_m,
    facility_id} (arrays sorted by building id)}. ``reader``: who reads each district from PostGIS, the
    driver (default) or the worker computing it (see :mod:`grid_builder.province`)."""
    ft = _resolve_type(type_key)
    radius = float(radius_m if radius_m is not None else ft.radius_m)
    distance = distance or ft.distance
    if distance not in ("walk", "line"):
        raise SitingInputError(f"distance 只能是 walk 或 line (got {distance!r})")
    if not np.isfinite(radius) or radius <= 0:
        raise SitingInputError(f"服务半径必须大于 0 (radius must be > 0, got {radius})")
    check_reader(reader)
    with engine.connect() as conn:
        chosen = partition_codes(conn, codes, level)
        known = {a.code for a in store.areas(conn, level)}
    if set(chosen) - known:
        raise SitingInputError(f"没有这些{level}: {sorted(set(chosen) - known)} (no such admin units with a boundary)")
    if reader == "worker":
        ordered = sorted(chosen)  # the order read_partitions visits them in (store.areas: by code)
        answers = run_partitions(coverage_from_db, ordered, type_key, radius, distance, ordered, level,
                                 workers=workers, scheduler=scheduler, client=client)
    else:
        answers = run_partitions(coverage_partition, read_partitions(engine, type_key, radius, distance, chosen,
                                                                     level),
                                 radius, distance, workers=workers, scheduler=scheduler, client=client)
    return merge(answers, ft.name, ft.code, radius, distance)


def merge(answers: Sequence[dict[str, Any]], name: str, type_code: str, radius_m: float,
          distance: str) -> dict[str, Any]:
    """The partitions' answers as one result (pure)."""
    by_area = [{"code": a["code"], "name": a["name"], "households": int(a["households"]),
                "covered_households": int(a["covered_households"]),
                "covered_share": round(a["covered_households"] / a["households"], 4) if a["households"] else 0.0}
               for a in answers if len(a["building_id"])]
    cols = {k: np.concatenate([a[k] for a in answers]) if answers else np.zeros(0)
            for k in ("building_id", "covered", "distance_m", "facility_id")}
    order = np.argsort(cols["building_id"], kind="stable")
    households = sum(a["households"] for a in answers)
    covered = sum(a["covered_households"] for a in answers)
    return {
        "summary": {"facility_type": name, "type_code": type_code, "radius_m": radius_m, "distance": distance,
                    "partitions": len(answers), "buildings": int(len(order)), "households": int(households),
                    "covered_households": int(covered),
                    "covered_share": round(covered / households, 4) if households else 0.0, "by_area": by_area},
        "buildings": {k: v[order] for k, v in cols.items()},
    }
