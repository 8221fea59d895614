"""Provisional townships (街道) and communities (社区) derived from the road network and district polygons.

No public source has the demo area's township/community boundaries, so they are drawn here and marked
``source = provisional``: the land part of each district inside the demo area (large water bodies such
as the Huangpu River are left out) is cut into street blocks along the roads, the blocks are grouped
into townships, and each township's blocks into communities of roughly 1,000–3,000 households — with
the same household-balanced partitioner as the grids, so every boundary follows a road.

Codes: township = district code + ``9`` + 2-digit sequence (the 9xx range keeps clear of real
GB/T 10114 township codes, which a city import will bring), community = township code + 3 digits,
both numbered west→east, north→south.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid_builder.blocks import assign_points, street_blocks
from grid_builder.codes import west_east_north_south
from grid_builder.geom import as_multipolygon, polygons_of, safe_union
from grid_builder.partition import partition_units

LARGE_WATER_M2 = 50_000.0


@dataclass
class ProvisionalUnit:
    """A derived township or community (source=provisional), with its households and flags."""

    code: str
    name: str
    level: str  # township | community
    parent_code: str
    geom: object  # metric MultiPolygon
    households: float
    flags: list[str] = field(default_factory=list)


@dataclass
class NamedLine:
    """A block-bounding line (metric) and the road name it carries, for naming units."""

    geom: BaseGeometry  # metric
    name: str | None


def _name_for(geom, roads: list[NamedLine], taken: set[str], suffix: str, fallback: str) -> str:
    """Name after the named road that runs longest along/inside the unit, e.g. 北京东路社区（临时）."""
    ring = geom.buffer(15.0)
    best: dict[str, float] = {}
    for r in roads:
        if r.name and ring.intersects(r.geom):
            best[r.name] = best.get(r.name, 0.0) + r.geom.intersection(ring).length
    for name, _ in sorted(best.items(), key=lambda kv: -kv[1]):
        cand = f"{name}{suffix}"
        if cand not in taken:
            taken.add(cand)
            return cand
    taken.add(fallback)
    return fallback


def derive_provisional(
    districts: dict[str, tuple[str, BaseGeometry]],
    area,
    lines: list[NamedLine],
    water: list,
    anchors: list,
    households: list[float],
    township_band: tuple[float, float] = (5_000, 15_000),
    community_band: tuple[float, float] = (1_000, 3_000),
    seed: int = 0,
) -> tuple[list[ProvisionalUnit], list[str]]:
    """Townships and communities for each district (code -> (name, metric geometry)) inside ``area``.

    ``anchors``/``households``: one point and household count per building (metric).
    Returns the units and human-readable notes (e.g. bands that could not be met)."""
    anchor_arr = np.empty(len(anchors), dtype=object)
    anchor_arr[:] = anchors
    big_water = [w for w in water if w.area >= LARGE_WATER_M2]
    small_water = [w for w in water if w.area < LARGE_WATER_M2]
    water_u = safe_union(big_water) if big_water else None
    line_geoms = [ln.geom for ln in lines]
    units: list[ProvisionalUnit] = []
    notes: list[str] = []
    for dcode, (dname, dgeom) in sorted(districts.items()):
        land = dgeom.intersection(area)
        if water_u is not None:
            land = land.difference(water_u)
        land = as_multipolygon(safe_union([p for p in polygons_of(land) if p.area > 1_000]))
        if land.is_empty:
            notes.append(f"{dcode} {dname} 与演示区域没有交集")
            continue
        blocks = street_blocks(land, line_geoms, small_water)
        hh = [0.0] * len(blocks)
        # only the district's anchors count: test them against its land first (one vectorised call), then
        # place those in blocks — every anchor of the city placed in every district's blocks was
        # O(districts × buildings), minutes at 10^7 addresses (docs/scaling.md)
        inside = land.buffer(1.0)
        shapely.prepare(inside)
        mine: list[int] = np.flatnonzero(shapely.contains(inside, anchor_arr)).tolist() if len(anchor_arr) else []
        where = assign_points([b.geom for b in blocks], [anchors[i] for i in mine])
        for i, blk in zip(mine, where, strict=True):
            if blk >= 0:
                hh[blk] += households[i]
        geoms = [b.geom for b in blocks]
        t_res = partition_units(geoms, hh, *township_band, restarts=4, seed=seed)
        if t_res.flags:
            notes.append(f"{dcode} 街道划分: " + "; ".join(t_res.messages or t_res.flags))
        t_groups = _groups(t_res.labels)
        t_geoms = [as_multipolygon(safe_union([geoms[u] for u in g])) for g in t_groups]
        t_order = west_east_north_south([_pt(g) for g in t_geoms])
        taken: set[str] = set()
        for ti, gi in enumerate(t_order):
            tcode = f"{dcode}9{ti + 1:02d}"
            tgeom = t_geoms[gi]
            t_units = t_groups[gi]
            t_hh = sum(hh[u] for u in t_units)
            tname = _name_for(tgeom, lines, taken, "街道（临时）", f"{dname}临时街道{ti + 1:02d}")
            units.append(ProvisionalUnit(tcode, tname, "township", dcode, tgeom, t_hh, list(t_res.flags)))
            sub_geoms = [geoms[u] for u in t_units]
            sub_hh = [hh[u] for u in t_units]
            c_res = partition_units(sub_geoms, sub_hh, *community_band, restarts=4, seed=seed)
            if c_res.flags:
                notes.append(f"{tcode} 社区划分: " + "; ".join(c_res.messages or c_res.flags))
            c_groups = _groups(c_res.labels)
            c_geoms = [as_multipolygon(safe_union([sub_geoms[u] for u in g])) for g in c_groups]
            c_order = west_east_north_south([_pt(g) for g in c_geoms])
            for ci, gj in enumerate(c_order):
                ccode = f"{tcode}{ci + 1:03d}"
                c_hh = sum(sub_hh[u] for u in c_groups[gj])
                flags = []
                if not (community_band[0] <= c_hh <= community_band[1]):
                    flags.append("outside_band")
                cname = _name_for(c_geoms[gj], lines, taken, "社区（临时）", f"{tname}第{ci + 1}社区（临时）")
                units.append(ProvisionalUnit(ccode, cname, "community", tcode, c_geoms[gj], c_hh, flags))
    return units, notes


def _groups(labels: list[int]) -> list[list[int]]:
    out: dict[int, list[int]] = {}
    for u, r in enumerate(labels):
        out.setdefault(r, []).append(u)
    return [out[k] for k in sorted(out)]


def _pt(geom) -> tuple[float, float]:
    p = geom.centroid
    return (p.x, p.y)
