"""Build the grids and micro-grids of one community (pure core, metric coordinates).

community boundary + road/rail lines + water + buildings  →  street blocks → units (blocks, or building
groups of over-full blocks) → grids (``partition``) → micro-grids (``microgrid``) → codes → validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from grid_builder.blocks import Block, assign_points, building_anchor, split_block, street_blocks
from grid_builder.codes import child_codes, west_east_north_south
from grid_builder.errors import EmptyCommunity
from grid_builder.geom import (
    as_multipolygon,
    clean_polygonal,
    n_parts,
    safe_union,
)
from grid_builder.microgrid import build_microgrids
from grid_builder.partition import partition_units
from grid_builder.records import Area, BuildingIn
from grid_builder.validate import Issue, validate_community


@dataclass
class BuildConfig:
    """Household bands of grids and micro-grids, and the partitioner's restarts and seed."""

    grid_min: float = 300
    grid_max: float = 500
    micro_min: float = 30
    micro_max: float = 50
    restarts: int = 4
    seed: int = 0

    def check(self) -> list[str]:
        """Messages for the bands that are not valid (empty when the configuration is usable)."""
        errs = []
        if not (0 < self.grid_min <= self.grid_max):
            errs.append(f"网格户数区间无效: {self.grid_min}–{self.grid_max}")
        if not (0 < self.micro_min <= self.micro_max):
            errs.append(f"微网格户数区间无效: {self.micro_min}–{self.micro_max}")
        return errs


@dataclass
class CommunityBuild:
    """What the core built for one community: blocks, grids, micro-grids, flags, messages, issues."""

    community_code: str
    boundary: BaseGeometry
    blocks: list[Block]
    grids: list[Area]
    microgrids: list[Area]
    flags: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def best_effort(self) -> bool:
        """True when a flag says the result is a compromise (band partly met, no roads, repairs…)."""
        return bool(
            {
                "best_effort",
                "band_partly_met",
                "no_roads",
                "boundary_repaired",
                "no_households",
                "over_band_building",
            }
            & set(self.flags)
        )


def community_units(
    boundary,
    lines,
    water,
    buildings: list[BuildingIn],
    cfg: BuildConfig,
    flags,
    messages,
    split_over: float | None = None,
    split_max: float | None = None,
):
    """Street blocks of the community, and the partition units (blocks, or pieces of over-full blocks)."""
    blocks = street_blocks(boundary, lines, water)
    if len(blocks) <= 1 and not any(not ln.is_empty and boundary.intersects(ln) for ln in lines):
        flags.append("no_roads")
        messages.append("社区内没有道路，按建筑分组划分网格 (no roads inside: grids follow building groups)")
    anchors = [building_anchor(b.geom) for b in buildings]
    where = assign_points([b.geom for b in blocks], anchors)
    for bi, bk in enumerate(where):
        if bk >= 0:
            blocks[bk].building_ids.append(bi)  # index into ``buildings`` for now
            blocks[bk].households += buildings[bi].households
    units: list[tuple[BaseGeometry, list[int], int]] = []  # geometry, building indices, block index
    split_over = cfg.grid_max if split_over is None else split_over
    split_max = (cfg.grid_min + cfg.grid_max) / 2.0 if split_max is None else split_max
    for k, blk in enumerate(blocks):
        if blk.households > split_over and len(blk.building_ids) > 1:
            fps = [buildings[i].geom for i in blk.building_ids]
            hh = [buildings[i].households for i in blk.building_ids]
            for piece, grp in split_block(blk.geom, fps, hh, split_max):
                units.append((piece, [blk.building_ids[i] for i in grp], k))
        else:
            units.append((blk.geom, list(blk.building_ids), k))
    return blocks, units


def _in_band(units, labels, hh, lo, hi) -> int:
    sums: dict[int, float] = {}
    for u, r in enumerate(labels):
        sums[r] = sums.get(r, 0.0) + hh[u]
    return sum(1 for v in sums.values() if lo <= v <= hi)


def partition_community(boundary, lines, water, buildings, cfg: BuildConfig, flags=None, messages=None):
    """Street blocks, units and their partition into grids.

    First on whole blocks (over-full blocks split along building groups); when some grids miss the
    band, once more with blocks above the band's width split into smaller building groups, and the
    result with more grids inside the band wins (ties keep the road-following one)."""
    flags = [] if flags is None else flags
    messages = [] if messages is None else messages
    blocks, units = community_units(boundary, lines, water, buildings, cfg, flags, messages)

    def run(us):
        hh = [sum(buildings[i].households for i in u[1]) for u in us]
        r = partition_units(
            [u[0] for u in us], hh, cfg.grid_min, cfg.grid_max, restarts=cfg.restarts, seed=cfg.seed
        )
        return r, hh

    res, hh = run(units)
    if res.k and _in_band(units, res.labels, hh, cfg.grid_min, cfg.grid_max) < res.k:
        width = max(cfg.grid_max - cfg.grid_min, 1.0)
        blocks2, units2 = community_units(
            boundary, lines, water, buildings, cfg, [], [], split_over=width, split_max=width / 2.0
        )
        res2, hh2 = run(units2)
        score1 = _in_band(units, res.labels, hh, cfg.grid_min, cfg.grid_max) / res.k
        score2 = _in_band(units2, res2.labels, hh2, cfg.grid_min, cfg.grid_max) / max(res2.k, 1)
        if score2 > score1:
            blocks, units, res = blocks2, units2, res2
    return blocks, units, res


def build_community(
    community_code: str,
    boundary: BaseGeometry,
    lines: list[BaseGeometry],
    water: list[BaseGeometry],
    buildings: list[BuildingIn],
    cfg: BuildConfig | None = None,
) -> CommunityBuild:
    """Grids and micro-grids of one community. Raises EmptyCommunity when there is nothing to divide."""
    cfg = cfg or BuildConfig()
    bad = cfg.check()
    if bad:
        raise ValueError("; ".join(bad))
    flags: list[str] = []
    messages: list[str] = []
    boundary, repaired = clean_polygonal(boundary)
    if boundary.is_empty or boundary.area < 1.0:
        raise EmptyCommunity(
            f"社区 {community_code} 边界为空或无效，无法划分网格 (empty or invalid boundary)"
        )
    if repaired:
        flags.append("boundary_repaired")
        messages.append(f"社区 {community_code} 边界无效（自相交等），已自动修复 (boundary repaired)")
    if not buildings or sum(b.households for b in buildings) <= 0:
        flags.append("no_households")
        messages.append(f"社区 {community_code} 没有住户，整个社区作为一个网格 (no households)")
    blocks, units, res = partition_community(boundary, lines, water, buildings, cfg, flags, messages)
    for f in res.flags:
        if f not in flags:
            flags.append(f)
    messages += res.messages
    grids = _grid_areas(community_code, _drafts(res.labels, units), buildings, cfg, flags)
    microgrids: list[Area] = []
    by_id = {b.id: b for b in buildings}
    for g in grids:
        mgs = build_microgrids(
            g, [by_id[i] for i in g.building_ids], cfg.micro_min, cfg.micro_max, seed=cfg.seed
        )
        microgrids.extend(mgs)
    for b in blocks:
        b.building_ids = [buildings[i].id for i in b.building_ids]
    issues = validate_community(
        community_code,
        boundary,
        {g.code: g.geom for g in grids},
        {m.code: (m.parent_code, m.geom) for m in microgrids},
        [b.id for b in buildings],
        _membership(grids),
        _membership(microgrids),
    )
    return CommunityBuild(community_code, boundary, blocks, grids, microgrids, flags, messages, issues)


def _drafts(labels: list[int], units) -> list[tuple[BaseGeometry, list[int]]]:
    """(dissolved geometry, building indices) of each region of the partition, in label order."""
    groups: dict[int, list[int]] = {}
    for ui, r in enumerate(labels):
        groups.setdefault(r, []).append(ui)
    drafts = []
    for _r, uis in groups.items():
        geom = as_multipolygon(safe_union([units[u][0] for u in uis]))
        bids = [i for u in uis for i in units[u][1]]
        drafts.append((geom, bids))
    return drafts


def _grid_areas(
    community_code: str, drafts, buildings: list[BuildingIn], cfg: BuildConfig, flags: list[str]
) -> list[Area]:
    """The grids of the drafts, coded west→east, north→south, with their flags (``flags`` of the
    community gains ``over_band_building`` when a grid holds a building above the band)."""
    pts = [(g.centroid.x, g.centroid.y) for g, _ in drafts]  # centroid: reproducible in SQL (ST_Centroid)
    order = west_east_north_south(pts)
    codes = child_codes(community_code, len(order), 3)
    grids: list[Area] = []
    for code, di in zip(codes, order, strict=True):
        geom, bids = drafts[di]
        hh = sum(buildings[i].households for i in bids)
        g_flags = []
        if buildings and not (cfg.grid_min <= hh <= cfg.grid_max):
            g_flags.append("outside_band")
            heavy = [i for i in bids if buildings[i].households > cfg.grid_max]
            if heavy:
                g_flags.append("over_band_building")
                if "over_band_building" not in flags:
                    flags.append("over_band_building")
        if n_parts(geom) > 1:
            g_flags.append("not_contiguous")
        grids.append(Area(code, "grid", community_code, geom, hh, [buildings[i].id for i in bids], g_flags))
    return grids


def _membership(areas: list[Area]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for a in areas:
        for b in a.building_ids:
            out.setdefault(b, []).append(a.code)
    return out


def point_in(areas: list[Area], x: float, y: float) -> Area | None:
    """The first area covering the metric point (x, y), or None."""
    p = Point(x, y)
    for a in areas:
        if a.geom.covers(p):
            return a
    return None
