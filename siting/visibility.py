"""Camera visibility: range + field-of-view sector + occlusion by building footprints.

A candidate camera is a position plus a heading (degrees clockwise from north, as a compass), with a
range and a horizontal field-of-view angle. A target is seen when it is within range, inside the
sector and the straight sight line does not cross a building footprint. Footprints are shrunk by
``clearance_m`` so a camera fixed on a wall, or a target on a facade, is not hidden by its own wall.

Occlusion is tested once per (position, target) pair with shapely 2's vectorised STRtree query and
then shared by the headings of that position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .coverage import Coverage


@dataclass(frozen=True)
class CameraModel:
    """A camera model: its useful range and horizontal field of view."""
    name: str
    range_m: float
    fov_deg: float


#: default camera models (typical 1/2.8" bullet / dome cameras with 4 mm / 6 mm / 12 mm lenses)
CAMERA_MODELS = {
    "bullet-4mm": CameraModel("bullet-4mm", 30.0, 90.0),
    "bullet-6mm": CameraModel("bullet-6mm", 50.0, 60.0),
    "bullet-12mm": CameraModel("bullet-12mm", 100.0, 30.0),
    "dome-360": CameraModel("dome-360", 25.0, 360.0),
}


@dataclass(frozen=True)
class CameraCandidates:
    """Candidate cameras: a mounting position, heading, range, FOV and model each."""
    position_xy: np.ndarray  # (m, 2) distinct mounting positions
    position: np.ndarray  # (n,) index into position_xy per candidate
    heading_deg: np.ndarray  # (n,)
    range_m: np.ndarray  # (n,)
    fov_deg: np.ndarray  # (n,)
    model: np.ndarray  # (n,) model name per candidate

    @property
    def xy(self) -> np.ndarray:
        """The mounting position of each candidate, ``(n, 2)`` metres."""
        return self.position_xy[self.position]

    def __len__(self) -> int:
        return len(self.position)


def candidate_cameras(position_xy, headings: int = 8, model: CameraModel | str = "bullet-6mm") -> CameraCandidates:
    """Every position × ``headings`` evenly spaced directions (0° = north), one camera model."""
    if isinstance(model, str):
        model = CAMERA_MODELS[model]
    position_xy = np.asarray(position_xy, dtype=np.float64).reshape(-1, 2)
    m = len(position_xy)
    h = 1 if model.fov_deg >= 360 else max(1, int(headings))
    heads = np.arange(h) * (360.0 / h)
    return CameraCandidates(
        position_xy=position_xy,
        position=np.repeat(np.arange(m), h),
        heading_deg=np.tile(heads, m),
        range_m=np.full(m * h, model.range_m),
        fov_deg=np.full(m * h, model.fov_deg),
        model=np.full(m * h, model.name, dtype=object),
    )


def combine(*cands: CameraCandidates) -> CameraCandidates:
    """Concatenate candidate sets (e.g. existing cameras + new candidates); positions are not merged."""
    offs = np.cumsum([0] + [len(c.position_xy) for c in cands[:-1]])
    return CameraCandidates(
        position_xy=np.concatenate([c.position_xy for c in cands]),
        position=np.concatenate([c.position + o for c, o in zip(cands, offs, strict=True)]),
        heading_deg=np.concatenate([c.heading_deg for c in cands]),
        range_m=np.concatenate([c.range_m for c in cands]),
        fov_deg=np.concatenate([c.fov_deg for c in cands]),
        model=np.concatenate([c.model for c in cands]),
    )


def bearing_deg(from_xy, to_xy) -> np.ndarray:
    """Compass bearing (0 = north/+y, 90 = east/+x) from ``from_xy`` to ``to_xy``."""
    d = np.asarray(to_xy, dtype=np.float64) - np.asarray(from_xy, dtype=np.float64)
    return np.degrees(np.arctan2(d[..., 0], d[..., 1])) % 360.0


def line_of_sight(position_xy, target_xy, pos_idx, tgt_idx, occluders, clearance_m: float = 0.5) -> np.ndarray:
    """Boolean per (position, target) pair: True when no (shrunk) footprint crosses the sight line."""
    import shapely

    pos_idx = np.asarray(pos_idx, dtype=np.int64)
    tgt_idx = np.asarray(tgt_idx, dtype=np.int64)
    clear = np.ones(pos_idx.size, dtype=bool)
    if pos_idx.size == 0 or occluders is None or len(occluders) == 0:
        return clear
    polys = np.asarray(occluders, dtype=object)
    if clearance_m > 0:
        polys = shapely.buffer(polys, -clearance_m)
        polys = polys[~shapely.is_empty(polys)]
    if len(polys) == 0:
        return clear
    tree = shapely.STRtree(polys)
    lines = shapely.linestrings(
        np.stack([np.asarray(position_xy)[pos_idx], np.asarray(target_xy)[tgt_idx]], axis=1)
    )
    hit_line, _ = tree.query(lines, predicate="intersects")
    clear[np.unique(hit_line)] = False
    return clear


def visibility_coverage(target_xy, cameras: CameraCandidates, occluders=None, clearance_m: float = 0.5) -> Coverage:
    """Targets × candidate cameras seen (distance = camera-to-target metres), sparse."""
    target_xy = np.asarray(target_xy, dtype=np.float64).reshape(-1, 2)
    n_t, n_c = len(target_xy), len(cameras)
    if n_t == 0 or n_c == 0:
        return Coverage.from_pairs([], [], [], n_t, n_c)
    # 1) (position, target) pairs within the largest range used at that position
    max_range = np.zeros(len(cameras.position_xy))
    np.maximum.at(max_range, cameras.position, cameras.range_m)
    tree = cKDTree(target_xy)
    lists = tree.query_ball_point(cameras.position_xy, max_range)
    cnt = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    p_idx = np.repeat(np.arange(len(lists)), cnt)
    t_idx = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(cnt.sum()))
    # 2) occlusion once per pair
    seen = line_of_sight(cameras.position_xy, target_xy, p_idx, t_idx, occluders, clearance_m)
    p_idx, t_idx = p_idx[seen], t_idx[seen]
    dist = np.hypot(*(target_xy[t_idx] - cameras.position_xy[p_idx]).T)
    bearing = bearing_deg(cameras.position_xy[p_idx], target_xy[t_idx])
    # 3) expand to the cameras at each position, keep range + sector
    order = np.argsort(cameras.position, kind="stable")
    cam_pos = cameras.position[order]
    lo = np.searchsorted(cam_pos, p_idx, side="left")
    hi = np.searchsorted(cam_pos, p_idx, side="right")
    k = hi - lo
    pair = np.repeat(np.arange(p_idx.size), k)
    cam = order[np.repeat(lo, k) + (np.arange(pair.size) - np.repeat(np.cumsum(k) - k, k))]
    off = np.abs((bearing[pair] - cameras.heading_deg[cam] + 180.0) % 360.0 - 180.0)
    ok = (dist[pair] <= cameras.range_m[cam]) & (
        (off <= cameras.fov_deg[cam] / 2.0 + 1e-9) | (cameras.fov_deg[cam] >= 360.0) | (dist[pair] < 1e-9)
    )
    return Coverage.from_pairs(t_idx[pair[ok]], cam[ok], dist[pair[ok]], n_t, n_c)


def sector(xy, heading_deg: float, range_m: float, fov_deg: float, steps: int = 16):
    """The camera's view sector as a shapely Polygon (for maps)."""
    from shapely.geometry import Polygon

    x, y = float(xy[0]), float(xy[1])
    if fov_deg >= 360:
        from shapely.geometry import Point

        return Point(x, y).buffer(range_m, quad_segs=steps)
    a = np.radians(heading_deg + np.linspace(-fov_deg / 2, fov_deg / 2, steps + 1))
    arc = np.column_stack([x + range_m * np.sin(a), y + range_m * np.cos(a)])
    return Polygon(np.vstack([[x, y], arc, [x, y]]))
