"""What an edit leads to: building membership, the rebuilt micro-grids of written grids, live figures.

Micro-grid rule: the micro-grids of every grid an edit writes (changed or new) are rebuilt inside it by
the micro-grid builder (`grid_builder.microgrid`, 30–50 households or one building), coded under the
grid's code; grids the edit does not touch keep their micro-grids, codes and versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from grid_builder.edit.ops import EditResult, Layout, grid_of
from grid_builder.geom import polsby_popper
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
    return {b.id: grid_of(grids, b.anchor) for b in layout.buildings}


def settle(layout: Layout, result: EditResult, micro_band: tuple[float, float] = MICRO_BAND,
           with_microgrids: bool = True) -> dict[str, GridOutcome]:
    """Buildings, households and (optionally) rebuilt micro-grids of every grid the edit writes."""
    after = membership(result.grids, layout)
    by_id = {b.id: b for b in layout.buildings}
    out = {}
    for code in result.affected:
        ids = sorted(i for i, g in after.items() if g == code)
        hh = float(sum(by_id[i].households for i in ids))
        micro: list[Area] = []
        if with_microgrids:
            grid = Area(code, "grid", layout.community_code, result.grids[code], hh, ids)
            micro = build_microgrids(grid, [BuildingIn(i, by_id[i].footprint, by_id[i].households) for i in ids],
                                     micro_band[0], micro_band[1])
        out[code] = GridOutcome(code, result.grids[code], ids, hh, micro)
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
