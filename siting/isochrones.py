"""Walking isochrones: the area reached from a facility within 5 / 10 / 15 minutes over the road network.

Method (a network buffer, the usual one for pedestrian service areas): one Dijkstra from each facility
(snapped to its nearest road edge; the walk to the road counts) with the largest budget as cut-off; for
each budget, every edge reached is kept — whole when it can be walked end to end within the budget, else
the part walked in from each reached end — and the kept segments are buffered by ``buffer_m`` (default
50 m: the plots on either side of a street) and merged (see :func:`_buffer`). Unlike a convex or concave hull of the reached
nodes, a network buffer never covers the far side of a river or a rail line the walk cannot cross.

Pure functions over a :class:`~siting.network.RoadNetwork` in metres; :func:`isochrones` returns shapely
polygons in the same metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csgraph

from .errors import SitingInputError
from .network import RoadNetwork

#: walking speed used to turn minutes into metres (4.5 km/h, a planning default; pass another)
WALK_M_PER_MIN = 75.0
#: the 5 / 10 / 15-minute life circles of GB 50180-2018
DEFAULT_MINUTES = (5, 10, 15)


@dataclass(frozen=True)
class Isochrone:
    """The area reached from one facility within ``minutes`` (``distance_m`` of walking), metres."""

    facility: int  # index into the facilities given
    minutes: float
    distance_m: float
    geom: shapely.Geometry


def _check(minutes, speed_m_per_min: float, buffer_m: float) -> list[float]:
    mins = sorted({float(m) for m in minutes})
    if not mins or mins[0] <= 0 or not np.isfinite(mins[-1]):
        raise SitingInputError(f"等时圈分钟数必须大于 0 (minutes must be > 0, got {list(minutes)})")
    if mins[-1] > 60:
        raise SitingInputError(f"等时圈最多 60 分钟 (at most 60 minutes, got {mins[-1]:g})")
    if not (0 < speed_m_per_min <= 300):
        raise SitingInputError(f"步行速度必须在 0–300 米/分钟 (speed must be in (0, 300] m/min, got {speed_m_per_min})")
    if not (0 < buffer_m <= 500):
        raise SitingInputError(f"缓冲距离必须在 0–500 米 (buffer must be in (0, 500] m, got {buffer_m})")
    return mins


def _reached_segments(net: RoadNetwork, d: np.ndarray, budget: float) -> np.ndarray:
    """(k, 2, 2) line segments of the edges walked within ``budget`` given node distances ``d``."""
    u, v, length = net.edge_u, net.edge_v, net.edge_len_m
    du, dv = d[u], d[v]
    near = np.minimum(du, dv) < budget
    u, v, length, du, dv = u[near], v[near], length[near], du[near], dv[near]
    a, b = net.node_xy[u], net.node_xy[v]
    left_u = np.where(np.isfinite(du), budget - du, -1.0)  # metres still to walk on arriving at u
    left_v = np.where(np.isfinite(dv), budget - dv, -1.0)
    whole = (left_u >= length) | (left_v >= length) | ((left_u > 0) & (left_v > 0) & (left_u + left_v >= length))
    segs = [np.stack([a[whole], b[whole]], axis=1)]
    part_u = ~whole & (left_u > 0)
    fu = (left_u[part_u] / length[part_u])[:, None]
    segs.append(np.stack([a[part_u], a[part_u] + fu * (b[part_u] - a[part_u])], axis=1))
    part_v = ~whole & (left_v > 0)
    fv = (left_v[part_v] / length[part_v])[:, None]
    segs.append(np.stack([b[part_v], b[part_v] + fv * (a[part_v] - b[part_v])], axis=1))
    return np.concatenate(segs)


def _buffer(segs: np.ndarray, origin: np.ndarray, buffer_m: float):
    """The network buffer of the segments (and of the facility itself).

    Segments are first joined into lines where they meet end to end (OSM draws a curved street as many
    short edges) and simplified by 1 m, then each line is buffered on its own and the buffers merged in
    one cascaded union. On the demo city this is ~4x faster than buffering every segment, and ~100x
    faster than buffering one MultiLineString (GEOS); the area differs by < 0.01 %."""
    lines = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(shapely.linestrings(segs))))
    parts = shapely.buffer(shapely.simplify(lines, 1.0), buffer_m, quad_segs=4)
    return shapely.union_all(np.append(parts, shapely.Point(origin).buffer(buffer_m, quad_segs=4)))


def isochrones(net: RoadNetwork, xy, minutes=DEFAULT_MINUTES, speed_m_per_min: float = WALK_M_PER_MIN,
               buffer_m: float = 50.0, chunk: int = 64) -> list[Isochrone]:
    """Walking isochrones of the points ``xy`` (metres), one per point and number of minutes (nested)."""
    mins = _check(minutes, speed_m_per_min, buffer_m)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return []
    snap = net.snap(xy)
    n, n_s = net.n_nodes, len(xy)
    length = net.edge_len_m[snap.edge]
    virt = n + np.arange(n_s)
    g = net.graph(np.concatenate([virt, virt]),
                  np.concatenate([net.edge_u[snap.edge], net.edge_v[snap.edge]]),
                  np.concatenate([snap.offset_m + snap.t * length, snap.offset_m + (1 - snap.t) * length]),
                  n_extra=n_s)
    budgets = [m * speed_m_per_min for m in mins]
    out: list[Isochrone] = []
    for start in range(0, n_s, chunk):
        idx = np.arange(start, min(n_s, start + chunk))
        dist = csgraph.dijkstra(g, directed=True, indices=virt[idx], limit=budgets[-1])[:, :n]
        for row, i in enumerate(idx):
            p0 = snap.xy[i]
            ea, eb = net.node_xy[net.edge_u[snap.edge[i]]], net.node_xy[net.edge_v[snap.edge[i]]]
            for m, budget in zip(mins, budgets, strict=True):
                segs = _reached_segments(net, dist[row], budget)
                # the road the facility stands on, walked both ways from its door
                walk = max(budget - snap.offset_m[i], 0.0)
                own = [np.stack([p0, p0 + min(1.0, walk / max(np.hypot(*(end - p0)), 1e-9)) * (end - p0)])
                       for end in (ea, eb)]
                area = _buffer(np.concatenate([segs, np.stack(own)]), xy[i], buffer_m)
                out.append(Isochrone(int(i), m, budget, area))
    return out
