"""WGS84 plain data in, WGS84 plain data out: the entry points the CLI, API and benchmark call.

Inputs are simple records (dicts / tuples with shapely geometries in lon/lat); everything metric
happens inside (UTM 51N), and results come back in lon/lat, ready for the store.
"""

from __future__ import annotations

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from grid_builder.blocks import building_anchor
from grid_builder.boundaries import NamedLine, ProvisionalUnit, derive_provisional
from grid_builder.build import BuildConfig, CommunityBuild, build_community
from grid_builder.demo_data import is_block_rail, is_block_road
from grid_builder.geom import to_lonlat, to_metric
from grid_builder.records import BuildingIn, BuildingRec, RoadIn

# the input records lived here before grid_builder.records; importing them from here still works
__all__ = [
    "BuildingIn",
    "BuildingRec",
    "RoadIn",
    "block_lines_metric",
    "community_grids",
    "provisional_boundaries",
    "to_lonlat",
]


def block_lines_metric(roads: list[RoadIn], rails: list[tuple[str | None, BaseGeometry]]) -> list[NamedLine]:
    """The roads and railways that bound street blocks, in metric coordinates."""
    out = [NamedLine(to_metric(r.geom), r.name) for r in roads if is_block_road(r.kind, r.tags)]
    out += [NamedLine(to_metric(g), None) for kind, g in rails if is_block_rail(kind)]
    return out


def provisional_boundaries(
    districts: dict[str, tuple[str, BaseGeometry]],
    area: BaseGeometry | tuple[float, float, float, float],
    roads: list[RoadIn],
    rails: list[tuple[str | None, BaseGeometry]],
    water: list[BaseGeometry],
    buildings: list[BuildingRec],
    township_band: tuple[float, float] = (5_000, 15_000),
    community_band: tuple[float, float] = (1_000, 3_000),
) -> tuple[list[ProvisionalUnit], list[str]]:
    """Provisional townships/communities (geometry returned in lon/lat)."""
    if isinstance(area, tuple):
        area = box(*area)
    lines = block_lines_metric(roads, rails)
    units, notes = derive_provisional(
        {c: (n, to_metric(g)) for c, (n, g) in districts.items()},
        to_metric(area),
        lines,
        [to_metric(w) for w in water],
        [to_metric(building_anchor(b.geom)) for b in buildings],
        [float(b.households) for b in buildings],
        township_band,
        community_band,
    )
    for u in units:
        u.geom = to_lonlat(u.geom)
    return units, notes


def community_grids(
    code: str,
    boundary: BaseGeometry,
    roads: list[RoadIn],
    rails: list[tuple[str | None, BaseGeometry]],
    water: list[BaseGeometry],
    buildings: list[BuildingRec],
    cfg: BuildConfig | None = None,
) -> CommunityBuild:
    """Grids and micro-grids of one community; geometry of the result stays metric (see ``to_lonlat``)."""
    lines = [ln.geom for ln in block_lines_metric(roads, rails)]
    bins = [BuildingIn(b.id, to_metric(b.geom), float(b.households)) for b in buildings]
    return build_community(code, to_metric(boundary), lines, [to_metric(w) for w in water], bins, cfg)


