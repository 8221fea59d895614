"""What an edit leads to: building membership, the rebuilt micro-grids of written grids, live figures.

Micro-grid rule: grids the edit does not touch keep their micro-grids, codes and versions. A changed grid
keeps its micro-grids and their codes when that is possible — each is clipped to the grid's new shape,
area the grid gained goes to the micro-grid it shares the longest border with, buildings follow their
anchors — provided every micro-grid stays one piece, every building lands in one and no micro-grid is a
unit range of a large building; otherwise, and for every new grid (split, merge), the micro-grids are
rebuilt inside it by the micro-grid builder (`grid_builder.microgrid`, 30–50 households or one
building), coded under the grid's code. Either way they are written as new versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely.geometry.base import BaseGeometry

from grid_builder.edit.invariants import check_microgrids
from grid_builder.edit.ops import EditBuilding, EditResult, Layout, grids_of, shared_length
from grid_builder.geom import (
    as_multipolygon,
    n_parts,
    polsby_popper,
    polygons_of,
    safe_difference,
    safe_intersection,
    safe_union,
)
from grid_builder.microgrid import build_microgrids
from grid_builder.records import Area, BuildingIn

MICRO_BAND = (30.0, 50.0)
GRID_BAND = (300.0, 500.0)


@dataclass
class GridOutcome:
    """One grid the edit writes: geometry (metric), buildings, households, rebuilt micro-grids."""

    code: str
    geom: BaseGeometry
    building_ids: list[int]
    households: float
    microgrids: list[Area]

    @property
    def compactness(self) -> float:
        """Polsby-Popper compactness (1 = a circle)."""
        return polsby_popper(self.geom)


def membership(grids: dict[str, BaseGeometry], layout: Layout) -> dict[int, str | None]:
    """Building id → the grid holding its anchor (None when none does)."""
    holds = grids_of(grids, layout.anchors_xy())
    return {b.id: g for b, g in zip(layout.buildings, holds, strict=True)}


def micro_flags(n: int, hh: float, band: tuple[float, float]) -> list[str]:
    """Flags of a micro-grid by its buildings and households (as the micro-grid builder sets them)."""
    if n == 0:
        return ["no_buildings"]
    if n == 1:
        return ["single_building"]
    return [] if band[0] <= hh <= band[1] else ["outside_band"]


STRIP_KEEP = 0.5  # a unit-range strip of a large building may lose at most half its area when fitted


def _attach_gains(geom: BaseGeometry, clipped: dict[str, BaseGeometry]) -> bool:
    """Give each part of ``geom`` no micro-grid covers to the micro-grid sharing most border with it."""
    for part in polygons_of(safe_difference(geom, safe_union(list(clipped.values())))):
        if part.area < 0.01:
            continue
        near = {c: shared_length(part, g) for c, g in clipped.items()}
        best = max(sorted(near), key=lambda c: near[c])
        if near[best] <= 0:
            return False
        clipped[best] = as_multipolygon(safe_union([clipped[best], part]))
    return True


def _clip(old: list[Area], geom: BaseGeometry) -> dict[str, BaseGeometry] | None:
    """Old micro-grids clipped to the new grid. A unit-range strip of a large building keeps its unit
    range; it may be trimmed or widened at the grid's edge but must keep at least ``STRIP_KEEP`` of its
    area (else the building's strips are rebuilt)."""
    clipped: dict[str, BaseGeometry] = {}
    for m in old:
        polys = [p for p in polygons_of(safe_intersection(m.geom, geom)) if p.area >= 0.01]
        if m.part is not None and sum(p.area for p in polys) < STRIP_KEEP * m.geom.area:
            return None  # most of a strip would go: rebuild
        if polys:
            clipped[m.code] = as_multipolygon(safe_union(polys))
    return clipped or None


def adjust_microgrids(code: str, geom: BaseGeometry, old: list[Area], members: list[EditBuilding],
                      band: tuple[float, float] = MICRO_BAND) -> list[Area] | None:
    """The old micro-grids fitted to the grid's new shape (codes kept), None when they cannot be: a unit
    strip would lose most of its area or its building left the grid, a micro-grid would fall into more
    pieces than it had, a building would land in none."""
    clipped = _clip(old, geom) if old else None
    if clipped is None or not _attach_gains(geom, clipped):
        return None
    before = {m.code: m for m in old}
    ids_here = {b.id for b in members}
    if any(m.part is not None and (m.code not in clipped or m.part["building_id"] not in ids_here) for m in old):
        return None  # a large building's strips belong with the building
    held: dict[str, list[EditBuilding]] = {c: [] for c in clipped}
    xy = np.array([[b.anchor.x, b.anchor.y] for b in members]).reshape(-1, 2)
    for b, c in zip(members, grids_of(clipped, xy), strict=True):
        if c is None:
            return None
        held[c].append(b)
    if any(n_parts(g) > max(1, n_parts(before[c].geom)) for c, g in clipped.items()):
        return None
    out = []
    for c in sorted(clipped):
        ids = [b.id for b in held[c]]
        m = before[c]
        if m.part is not None:  # a unit range keeps its share of the building's households and its flags
            hh = float(m.part["unit_households"]) + sum(b.households for b in held[c]
                                                       if b.id != m.part["building_id"])
            out.append(Area(c, "microgrid", code, clipped[c], hh, ids, list(m.flags), m.part))
            continue
        hh = float(sum(b.households for b in held[c]))
        out.append(Area(c, "microgrid", code, clipped[c], hh, ids, micro_flags(len(ids), hh, band)))
    return out


def settle(layout: Layout, result: EditResult, micro_band: tuple[float, float] = MICRO_BAND,
           with_microgrids: bool = True, old_micro: dict[str, list[Area]] | None = None) -> dict[str, GridOutcome]:
    """Buildings, households and (optionally) micro-grids of every grid the edit writes: ``old_micro``
    (grid code → its current micro-grids, metric) are fitted where possible, else rebuilt."""
    after = membership(result.grids, layout)
    by_id = {b.id: b for b in layout.buildings}
    out = {}
    for code in result.affected:
        ids = sorted(i for i, g in after.items() if g == code)
        hh = float(sum(by_id[i].households for i in ids))
        micro: list[Area] | None = None
        if with_microgrids:
            micro = adjust_microgrids(code, result.grids[code], (old_micro or {}).get(code, []),
                                      [by_id[i] for i in ids], micro_band)
            if micro is not None and check_microgrids(result.grids, {code: {m.code: m.geom for m in micro}}):
                micro = None  # fitting left a gap or an overlap: rebuild instead
            if micro is None:
                grid = Area(code, "grid", layout.community_code, result.grids[code], hh, ids)
                micro = build_microgrids(grid, [BuildingIn(i, by_id[i].footprint, by_id[i].households)
                                                for i in ids], micro_band[0], micro_band[1])
        out[code] = GridOutcome(code, result.grids[code], ids, hh, micro or [])
    return out


def figures(layout: Layout, result: EditResult, band: tuple[float, float] = GRID_BAND) -> dict:
    """Live figures of an edit: households per written grid against the band, compactness before / after,
    buildings that change grid (with households), codes created and retired."""
    before = membership(layout.grids, layout)
    after = membership(result.grids, layout)
    by_id = {b.id: b for b in layout.buildings}
    lo, hi = band
    grids = []
    for code in result.affected:
        ids = [i for i, g in after.items() if g == code]
        hh = round(sum(by_id[i].households for i in ids))
        old = layout.grids.get(code)
        grids.append({
            "code": code, "status": "changed" if code in layout.grids else "new", "households": hh,
            "buildings": len(ids), "in_band": lo <= hh <= hi, "band": [lo, hi],
            "area_m2": round(result.grids[code].area, 1),
            "compactness": round(polsby_popper(result.grids[code]), 4),
            "compactness_before": None if old is None else round(polsby_popper(old), 4),
        })
    moved: list[dict] = [{"building": i, "from": before[i], "to": after[i], "households": round(by_id[i].households, 1)}
             for i in sorted(after) if after[i] != before[i]]
    return {"grids": grids, "moved_buildings": moved,
            "households_moved": round(sum(float(m["households"]) for m in moved)),
            "created": result.created, "retired": result.retired, "changed": result.changed,
            "lineage": result.lineage}
