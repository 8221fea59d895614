"""A synthetic city grown from real structure: the scale data set of `shequ demo synth` (docs/scaling.md).

Pure (shapely + numpy over plain data). What is real and what is made up:

- **real**: the road network of central Shanghai (the Overpass extract in ``../shared/data``) and the
  district polygons. Street blocks are the faces of the named road network (`street_blocks`); a
  block's district is the one holding its centre; blocks outside every district (the river) are dropped.
- **made up, seeded** (``numpy.random.default_rng(seed)``): what stands in each block. A block is of one
  `BlockKind` — old lane houses (里弄), blocks of flats (多层), towers (高层) or no housing (offices, parks,
  schools: left empty) — drawn with weights that move from lanes near the Bund to towers farther out.
  Footprints are laid on the block's own grid (turned to the block's long side) at the kind's spacing,
  each within ``MAX_DEPTH_M`` of the block's edge so that a road can number it.
- **the registry's own rules** then do the rest: `build.plan_registry` numbers every building on its
  nearest named road by the odd / even rule (docs/address-code.md), gives blocks of flats and towers
  their buildings, units, floors and rooms (`build.dwelling_plan`: one room per household), and makes
  each housing block of flats or towers a compound (小区) from its polygon.

Every address of the result carries ``source = 'synthetic'``; every building the tag ``synthetic``.
``N`` (``target_addresses``) is a target: blocks are filled until the planned addresses (roads and
compounds included) reach it, so the set holds N addresses to within one building's rooms.

Beyond what the real blocks hold (~1.5 × 10^6), `grow_tiles` repeats the real structure as tiles: tile 0 is
the city above; tile k ≥ 1 is the road network's frame translated west of the real districts (`tile_layout`),
its districts the real ones clipped to the frame under synthetic codes ``9kkkDD`` and names ``合成k-…区``
(`tile_base`), grown from its own random stream and planned on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Polygon

from address_registry.build import (
    AdminUnit,
    BuildingIn,
    LanduseIn,
    RoadWay,
    clean_road_name,
    dwelling_plan,
    is_apartment_block,
    plan_registry,
)
from address_registry.errors import InvalidAddress
from address_registry.numbering import MAX_ROAD_DISTANCE_M, SHANGHAI, LocalProjection
from address_registry.records import AddressRecord, AliasRecord
from geo.demo_files import read_admin_units, read_roads
from geo.errors import TooLarge

SYNTH_SOURCE = "synthetic"
SYNTH_USER = "shequ demo synth"
# building ids (and negative OSM ids) of synthetic footprints start here: clear of any real id
SYNTH_ID_BASE = 1_000_000_000
# a footprint at most this far inside its block (the registry numbers buildings within 250 m of a road)
MAX_DEPTH_M = MAX_ROAD_DISTANCE_M - 30.0
BLOCK_MIN_M2 = 3_000.0
BLOCK_MAX_M2 = 600_000.0
M2_PER_HOUSEHOLD = 90.0
# memory the generation holds per planned address (records, components, footprints, the plan): the peak
# RSS of `grow_city` at 10^6 addresses was 989 MB (docs/scaling.md), rounded up; the refusal's estimate
BYTES_PER_ADDRESS = 1_000


@dataclass(frozen=True, slots=True)
class BlockKind:
    """What a street block of one kind holds: footprint size, spacing and floors (documented ranges)."""

    name: str
    label: str
    # osm-style building kind: apartments get units / floors / rooms, terrace houses one number each
    kind: str
    width_m: float
    depth_m: float
    # centre-to-centre spacing along and across the block's long side
    step_x_m: float
    step_y_m: float
    floors: tuple[int, int]
    # share of the gross floor area lived in (the demo's households rule)
    residential_share: float


LANE = BlockKind("lane", "里弄", "terrace", 9.0, 14.0, 12.0, 18.0, (2, 3), 0.6)
FLATS = BlockKind("flats", "多层住宅", "apartments", 48.0, 12.0, 58.0, 34.0, (5, 7), 1.0)
TOWERS = BlockKind("towers", "高层住宅", "apartments", 26.0, 26.0, 55.0, 60.0, (18, 33), 1.0)
NO_HOUSING = BlockKind("none", "非住宅", "", 0.0, 0.0, 1.0, 1.0, (0, 0), 0.0)
KINDS = (LANE, FLATS, TOWERS, NO_HOUSING)

COMPOUND_WORDS_A = "锦绣阳光康乐华庭金桥银杏翠湖明珠海棠丽都春江紫荆瑞祥和平兴业宝山长风新华东方嘉禾绿洲枫林"
COMPOUND_WORDS_B = ("花园", "新村", "苑", "公寓", "家园", "小区", "名邸", "雅苑")


def kind_weights(distance_km: float) -> np.ndarray:
    """Weights of lane / flats / towers / no housing for a block this far from the Bund: the old lanes
    thin out and the towers grow with distance (central Shanghai's pattern)."""
    lane = max(0.05, 0.45 - 0.07 * distance_km)
    towers = min(0.45, 0.12 + 0.05 * distance_km)
    return np.array([lane, 0.35, towers, 0.2]) / (lane + 0.35 + towers + 0.2)


@dataclass(slots=True)
class StreetBlock:
    """A face of the named road network (metres in the projection, and WGS84), in one district."""

    index: int
    district_code: str
    metres: Polygon
    wgs84: Polygon


@dataclass(slots=True)
class SynthCity:
    """The synthetic city: footprints, the planned registry and counts."""

    seed: int
    target_addresses: int
    buildings: list[BuildingIn]
    records: list[AddressRecord]
    aliases: list[AliasRecord]
    compounds: list[LanduseIn]
    stats: dict[str, int] = field(default_factory=dict)
    # building id → (block kind name, block index)
    building_block: dict[int, tuple[str, int]] = field(default_factory=dict)
    # the tile of a tiled city (`grow_tiles`) this is; 0: the real place
    tile_index: int = 0

    @property
    def households(self) -> int:
        """Households of every footprint (one room each in a block of flats)."""
        return sum(b.households or 0 for b in self.buildings)


def street_blocks(
    roads: Iterable[RoadWay], districts: Sequence[AdminUnit], projection: LocalProjection = SHANGHAI
) -> list[StreetBlock]:
    """The faces of the named (address) road network between ``BLOCK_MIN_M2`` and ``BLOCK_MAX_M2``, each in
    the district holding its centre, ordered by their centre (west to east, south to north)."""
    lines = [
        projection.geom_to_metres(r.geom)
        for r in roads
        if clean_road_name(r.name) and r.geom is not None and not r.geom.is_empty
    ]
    if not lines:
        return []
    noded = shapely.get_parts(shapely.union_all(lines))
    faces = [f for f in shapely.get_parts(shapely.polygonize(noded)) if BLOCK_MIN_M2 <= f.area <= BLOCK_MAX_M2]
    faces.sort(key=lambda f: (round(f.centroid.x, 1), round(f.centroid.y, 1)))
    dist_m = [(d, projection.geom_to_metres(d.geom)) for d in districts if d.geom is not None]
    out: list[StreetBlock] = []
    for face in faces:
        centre = face.representative_point()
        holder = next((d for d, g in dist_m if g.contains(centre)), None)
        if holder is None:
            continue
        out.append(StreetBlock(len(out), holder.code, face, projection.geom_to_lonlat(face)))
    return out


def _footprints(block: StreetBlock, kind: BlockKind, rng: np.random.Generator) -> list[Polygon]:
    """Footprints of ``kind`` on a grid turned to the block's long side, inside the block (5 m back from
    its edge) and at most ``MAX_DEPTH_M`` from it."""
    rect = block.metres.minimum_rotated_rectangle
    xy = np.asarray(rect.exterior.coords)[:4]
    edges = np.diff(np.vstack([xy, xy[:1]]), axis=0)
    long_edge = edges[int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))]
    angle = math.degrees(math.atan2(long_edge[1], long_edge[0]))
    centre = block.metres.centroid
    inner = block.metres.buffer(-5.0)
    if inner.is_empty:
        return []
    shell = block.metres.exterior
    flat = affinity.rotate(block.metres, -angle, origin=centre)
    x0, y0, x1, y1 = flat.bounds
    jitter = rng.uniform(0.0, 1.0, 2)
    xs = np.arange(x0 + kind.step_x_m * (0.5 + 0.3 * jitter[0]), x1, kind.step_x_m)
    ys = np.arange(y0 + kind.step_y_m * (0.5 + 0.3 * jitter[1]), y1, kind.step_y_m)
    out = []
    w, d = kind.width_m / 2, kind.depth_m / 2
    for cy in ys:
        for cx in xs:
            box = Polygon([(cx - w, cy - d), (cx + w, cy - d), (cx + w, cy + d), (cx - w, cy + d)])
            fp = affinity.rotate(box, angle, origin=centre)
            if inner.contains(fp) and shell.distance(fp.centroid) <= MAX_DEPTH_M:
                out.append(fp)
    return out


def addresses_of(b: BuildingIn) -> int:
    """Addresses the registry makes for one footprint of its own number: the house number, and for a block
    of flats its building, units, floors and rooms (`build.dwelling_plan`)."""
    if not is_apartment_block(b):
        return 1
    assert b.floors is not None and b.households is not None
    plan = dwelling_plan(int(b.households), int(b.floors))
    return 2 + len({u for u, _, _ in plan}) + len({(u, f) for u, f, _ in plan}) + len(plan)


def estimate_bytes(target_addresses: int) -> int:
    """Memory the generation needs for ``target_addresses`` (``BYTES_PER_ADDRESS`` each)."""
    return int(target_addresses) * BYTES_PER_ADDRESS


def check_fits(target_addresses: int, available_bytes: int) -> None:
    """Refuse (TooLarge) a size whose estimated memory is over 80 % of what is available."""
    need = estimate_bytes(target_addresses)
    if need > 0.8 * available_bytes:
        raise TooLarge(
            f"合成 {target_addresses:,} 个地址约需 {need / 2**30:.1f} GiB 内存，本机可用 "
            f"{available_bytes / 2**30:.1f} GiB：请减小 --addresses "
            f"(synthesising {target_addresses:,} addresses needs about {need / 2**30:.1f} GiB, "
            f"{BYTES_PER_ADDRESS:,} bytes per address; {available_bytes / 2**30:.1f} GiB available)"
        )


def _compound_name(rng: np.random.Generator, used: set[str]) -> str:
    a = COMPOUND_WORDS_A
    for _ in range(50):
        i = int(rng.integers(0, len(a) // 2)) * 2
        name = a[i : i + 2] + COMPOUND_WORDS_B[int(rng.integers(0, len(COMPOUND_WORDS_B)))]
        if name not in used:
            used.add(name)
            return name
    base = name
    k = 2
    while f"{base}{k}期" in used:
        k += 1
    used.add(f"{base}{k}期")
    return f"{base}{k}期"


def grow_city(
    roads: Sequence[RoadWay],
    districts: Sequence[AdminUnit],
    target_addresses: int,
    seed: int = 0,
    admin_names: dict[str, str] | None = None,
    projection: LocalProjection = SHANGHAI,
    blocks: Sequence[StreetBlock] | None = None,
    tile: Tile | None = None,
) -> SynthCity:
    """The synthetic city of about ``target_addresses`` standard addresses (see the module docstring).

    ``tile``: the inputs are tile ``tile.index`` ≥ 1 of a tiled city (`tile_inputs`): its own random stream
    (`tile_rng`), building ids from `tile_id_base`, block kinds drawn by the distance from the tile's own
    Bund (the blocks' metres less ``tile.offset_m``). None (or tile 0) is today's city.

    Raises InvalidAddress when the real blocks cannot hold that many at these densities (the message gives
    the capacity)."""
    if target_addresses < 1:
        raise InvalidAddress("--addresses 必须为正数 must be positive")
    index = tile.index if tile is not None else 0
    ox, oy = tile.offset_m if tile is not None else (0.0, 0.0)
    id_base = tile_id_base(index)
    rng = tile_rng(seed, index)
    blocks = list(blocks) if blocks is not None else street_blocks(roads, districts, projection)
    road_names = {clean_road_name(r.name) for r in roads} - {None}
    budget = target_addresses - len(road_names)
    order = rng.permutation(len(blocks))
    buildings: list[BuildingIn] = []
    compounds: list[LanduseIn] = []
    building_block: dict[int, tuple[str, int]] = {}
    used_names: set[str] = set()
    planned = 0
    for bi in order:
        if planned >= budget:
            break
        block = blocks[int(bi)]
        c = block.metres.centroid
        kind = KINDS[int(rng.choice(len(KINDS), p=kind_weights(math.hypot(c.x - ox, c.y - oy) / 1000.0)))]
        if kind is NO_HOUSING:
            continue
        fps = _footprints(block, kind, rng)
        if not fps:
            continue
        if kind is not LANE:
            compounds.append(
                LanduseIn(-(id_base + len(compounds) + 1), "residential", _compound_name(rng, used_names),
                          block.wgs84, None)
            )
            planned += 1
        for fp in fps:
            if planned >= budget:
                break
            floors = int(rng.integers(kind.floors[0], kind.floors[1] + 1))
            households = max(1, int(round(fp.area * floors * kind.residential_share / M2_PER_HOUSEHOLD)))
            bid = id_base + len(buildings) + 1
            b = BuildingIn(
                id=bid,
                geom=projection.geom_to_lonlat(fp),
                osm_id=-bid,
                kind=kind.kind,
                floors=floors,
                households=households,
            )
            buildings.append(b)
            building_block[bid] = (kind.name, block.index)
            planned += addresses_of(b)
    if planned < budget:
        raise InvalidAddress(
            f"真实街区按设定密度只容纳约 {planned + len(road_names):,} 个地址，少于 {target_addresses:,}"
            f" (the real street blocks hold about {planned + len(road_names):,} addresses at these densities)"
        )
    plan = plan_registry(
        districts=list(districts),
        roads=list(roads),
        buildings=buildings,
        admin_names=admin_names or {},
        projection=projection,
        landuse=compounds,
    )
    for rec in plan.records:
        rec.source = SYNTH_SOURCE
    for al in plan.aliases:
        al.source = SYNTH_SOURCE
    stats = dict(plan.stats)
    stats.update(addresses=len(plan.records), buildings=len(buildings), blocks=len(blocks),
                 compounds_planned=len(compounds), households=sum(b.households or 0 for b in buildings))
    return SynthCity(seed, target_addresses, buildings, plan.records, plan.aliases, compounds, stats,
                     building_block, index)


# -- tiling: the real structure repeated for sizes beyond the real blocks (10^7) --------------------------

# addresses a tile is given under `--tiles auto`: the real blocks hold about 1.5 × 10^6 at these densities
# (docs/scaling.md §1); a fifth kept back so that no seed's tile runs out of blocks
TILE_CAPACITY = 1_200_000
# tiles west of the real districts in rows of this many, each row south of the one before
TILE_COLUMNS = 8
TILE_GAP_DEG = 0.02
# building / road ids of tile k start at SYNTH_ID_BASE + k × TILE_ID_STRIDE (a tile has < 10^6 buildings)
TILE_ID_STRIDE = 100_000_000
# node ids of tile k's ways: -(k × TILE_NODE_STRIDE + the real OSM node id) (OSM node ids are < 10^11)
TILE_NODE_STRIDE = 10**11
MAX_TILES = 999
# the synthetic "province" of tiles 1..: GB/T 2260 has no province code beginning with 9 (11–82 are used)
SYNTH_PROVINCE_NAME = "合成市"
TILE_TAG = "synthetic_tile"


@dataclass(frozen=True, slots=True)
class Tile:
    """Tile ``index`` of a tiled city: the real structure translated by ``offset_deg`` (lon, lat), which is
    ``offset_m`` in the local projection (exact: the projection is linear in lon and lat)."""

    index: int
    offset_deg: tuple[float, float]
    offset_m: tuple[float, float]


@dataclass(slots=True)
class TileBase:
    """What a tile ≥ 1 adds to the real base data: its districts (synthetic codes and names, the real
    polygons clipped to the road network's frame and translated), its roads (translated ways) and names."""

    tile: Tile
    districts: list[AdminUnit]
    roads: list[RoadWay]
    admin_names: dict[str, str]
    blocks: list[StreetBlock]
    # synthetic district code → the real district it copies
    real_district: dict[str, str]
    # tile road id → its nodes (the real way's OSM node ids moved to the tile's own negative range, so the
    # tile's named network is routable on its own); empty when the real ids were not given
    node_ids: dict[int, list[int]] = field(default_factory=dict)


def tile_id_base(index: int) -> int:
    """First building id (less one) of tile ``index``: tile 0 keeps ``SYNTH_ID_BASE``."""
    return SYNTH_ID_BASE + index * TILE_ID_STRIDE


def tile_rng(seed: int, index: int) -> np.random.Generator:
    """Tile 0 draws from ``default_rng(seed)`` (today's city), tile k from its own stream ``[seed, k]``."""
    return np.random.default_rng(seed if index == 0 else [seed, index])


def tile_count(target_addresses: int, tiles: str | int = "auto", capacity: int = TILE_CAPACITY) -> int:
    """How many tiles ``--tiles`` asks for: ``auto`` → one while the real blocks hold the target, else
    ⌈target / capacity⌉; a number → that many (1..MAX_TILES)."""
    if capacity < 1:
        raise InvalidAddress("--tile-capacity 必须为正数 must be positive")
    if str(tiles) == "auto":
        return max(1, math.ceil(target_addresses / capacity))
    try:
        k = int(tiles)
    except ValueError:
        raise InvalidAddress(f"--tiles 应为 auto 或 1..{MAX_TILES} 的整数 (auto or a number): {tiles!r}") from None
    if not 1 <= k <= MAX_TILES:
        raise InvalidAddress(f"--tiles 应为 auto 或 1..{MAX_TILES} 的整数 (auto or a number): {tiles!r}")
    if k > target_addresses:
        raise InvalidAddress(f"{k} 个分块多于 {target_addresses} 个地址 (more tiles than addresses)")
    return k


def tile_shares(target_addresses: int, tiles: int) -> list[int]:
    """The target of each tile: equal shares, the remainder to the first ones."""
    q, r = divmod(target_addresses, tiles)
    return [q + (1 if k < r else 0) for k in range(tiles)]


def tile_frame(roads: Iterable[RoadWay]) -> tuple[float, float, float, float]:
    """Bounds (lon/lat) of the named road network: the part of the real districts a tile copies."""
    geoms = [r.geom for r in roads if clean_road_name(r.name) and r.geom is not None and not r.geom.is_empty]
    if not geoms:
        raise InvalidAddress("没有命名道路，无法分块 (no named roads to tile)")
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
    return float(x0), float(y0), float(x1), float(y1)


def tile_layout(
    roads: Sequence[RoadWay], districts: Sequence[AdminUnit], count: int, projection: LocalProjection = SHANGHAI
) -> list[Tile]:
    """``count`` tiles: tile 0 is the real place; tiles 1.. are the road network's frame repeated west of
    every real district (east of central Shanghai lies the sea), ``TILE_COLUMNS`` to a row, rows going south,
    ``TILE_GAP_DEG`` apart — so no tile overlaps a real district or another tile."""
    fx0, fy0, fx1, fy1 = tile_frame(roads)
    real = [d.geom for d in districts if d.geom is not None]
    west = min(float(shapely.total_bounds(np.asarray(real, dtype=object))[0]), fx0) if real else fx0
    w, h = fx1 - fx0, fy1 - fy0
    out = [Tile(0, (0.0, 0.0), (0.0, 0.0))]
    for k in range(1, count):
        col, row = (k - 1) % TILE_COLUMNS, (k - 1) // TILE_COLUMNS
        dlon = (west - TILE_GAP_DEG - (col + 1) * (w + TILE_GAP_DEG)) - fx0
        dlat = -row * (h + TILE_GAP_DEG)
        out.append(Tile(k, (dlon, dlat), (dlon * projection.kx, dlat * projection.ky)))
    return out


def tile_district_code(real_code: str, index: int) -> str:
    """The 6-digit code of tile ``index``'s copy of a real district: ``9`` + the tile (3 digits) + the real
    code's county digits. No GB/T 2260 code begins with 9, so it cannot collide with a real one."""
    if not 1 <= index <= MAX_TILES:
        raise InvalidAddress(f"分块序号超出范围 tile index out of range: {index}")
    return f"9{index:03d}{real_code[-2:]}"


def tile_district_name(real_name: str, index: int) -> str:
    """``合成1-黄浦区``: says it is synthetic, which tile, which real district it copies (ends like it)."""
    return f"合成{index}-{real_name}"


def _translate(geom, dlon: float, dlat: float):
    return shapely.transform(geom, lambda c: c + np.array([dlon, dlat]))


def tile_base(
    tile: Tile,
    roads: Sequence[RoadWay],
    districts: Sequence[AdminUnit],
    blocks: Sequence[StreetBlock],
    node_ids: dict[int, list[int]] | None = None,
) -> TileBase:
    """The base data of tile ``tile.index`` ≥ 1: translated copies of the roads, of the blocks and of the
    real districts clipped to the road network's frame, under synthetic codes and names (``node_ids``: the
    real ways' OSM nodes by way id, copied as ``-(index × TILE_NODE_STRIDE + node)``)."""
    if tile.index < 1:
        raise InvalidAddress("分块 0 即真实城市 (tile 0 is the real city)")
    dlon, dlat = tile.offset_deg
    dx, dy = tile.offset_m
    frame = shapely.box(*tile_frame(roads))
    out_d: list[AdminUnit] = []
    code_of: dict[str, str] = {}
    for d in districts:
        if d.geom is None:
            continue
        part = d.geom.intersection(frame)
        if part.is_empty or part.area == 0:
            continue
        code = tile_district_code(d.code, tile.index)
        if code in code_of.values():
            raise InvalidAddress(f"区县 {d.code} 与另一区县的分块代码相同 (tile district code {code} repeats)")
        code_of[d.code] = code
        out_d.append(AdminUnit(code, tile_district_name(d.name, tile.index), "district",
                               _translate(part, dlon, dlat), synth_province_code(tile.index)))
    base = tile_id_base(tile.index)
    out_r: list[RoadWay] = []
    tile_nodes: dict[int, list[int]] = {}
    for i, r in enumerate(roads):
        if r.geom is None:
            continue
        way = RoadWay(-(base + i + 1), r.name, _translate(r.geom, dlon, dlat), r.kind,
                      {**(r.tags or {}), TILE_TAG: tile.index})
        out_r.append(way)
        if node_ids and r.osm_id in node_ids:
            tile_nodes[way.osm_id] = [-(tile.index * TILE_NODE_STRIDE + n) for n in node_ids[r.osm_id]]
    out_b = [
        StreetBlock(b.index, code_of[b.district_code], shapely.transform(b.metres, lambda c: c + np.array([dx, dy])),
                    _translate(b.wgs84, dlon, dlat))
        for b in blocks
        if b.district_code in code_of
    ]
    names = {d.code: d.name for d in out_d}
    names[synth_province_code(tile.index)] = SYNTH_PROVINCE_NAME
    return TileBase(tile, out_d, out_r, names, out_b, {v: k for k, v in code_of.items()}, tile_nodes)


def synth_province_code(index: int) -> str:
    """The synthetic province (``9x0000``) above the districts of tile ``index``."""
    return tile_district_code("00", index)[:2] + "0000"


def grow_tiles(
    roads: Sequence[RoadWay],
    districts: Sequence[AdminUnit],
    target_addresses: int,
    tiles: int,
    seed: int = 0,
    admin_names: dict[str, str] | None = None,
    projection: LocalProjection = SHANGHAI,
    blocks: Sequence[StreetBlock] | None = None,
    node_ids: dict[int, list[int]] | None = None,
) -> Iterator[tuple[TileBase | None, SynthCity]]:
    """The synthetic city of ``target_addresses`` as ``tiles`` tiles, one at a time (a caller that writes
    each and lets it go holds one tile's memory): (None, tile 0) — today's city of its share, the same
    as `grow_city` — then (its base data, tile k) for each k ≥ 1, each grown from its own random stream."""
    if target_addresses < 1:
        raise InvalidAddress("--addresses 必须为正数 must be positive")
    blocks = list(blocks) if blocks is not None else street_blocks(roads, districts, projection)
    layout = tile_layout(roads, districts, tiles, projection)
    for tile, share in zip(layout, tile_shares(target_addresses, tiles), strict=True):
        if tile.index == 0:
            yield None, grow_city(roads, districts, share, seed=seed, admin_names=admin_names,
                                  projection=projection, blocks=blocks)
            continue
        tb = tile_base(tile, roads, districts, blocks, node_ids)
        yield tb, grow_city(tb.roads, tb.districts, share, seed=seed, admin_names=tb.admin_names,
                            projection=projection, blocks=tb.blocks, tile=tile)


def road_lines(roads: Iterable[RoadWay]) -> dict[str, list[LineString]]:
    """Cleaned road name → its ways (WGS84): the geocoder's interpolation frame for a synthetic city."""
    out: dict[str, list[LineString]] = {}
    for r in roads:
        name = clean_road_name(r.name)
        if name and r.geom is not None:
            out.setdefault(name, []).append(r.geom)
    return out


def inputs_from_files(shared: Path) -> dict[str, Any]:
    """The real structure from the demo files: named roads, Shanghai's district polygons, admin names, and
    the named ways' OSM nodes (for the roads of tiles)."""
    units = read_admin_units(shared)
    named = [r for r in read_roads(shared) if r["name"]]
    roads = [RoadWay(r["osm_id"], r["name"], r["geom"], r["kind"], dict(r["tags"] or {})) for r in named]
    districts = [
        AdminUnit(u["code"], u["name"], "district", u["geom"], u["parent_code"])
        for u in units
        if u["level"] == "district" and u["geom"] is not None
    ]
    return {"roads": roads, "districts": districts, "admin_names": {u["code"]: u["name"] for u in units},
            "node_ids": {r["osm_id"]: list(r["node_ids"]) for r in named}}
