"""Snapping of edit operations to roads, street-block edges and building footprints (pure core, metric).

A dragged vertex (``move_vertex`` ``to``) and the points of a drawn split line (``split`` ``line``) are
snapped before the edit is previewed or saved: within ``tol`` metres the nearest *vertex* of a road
centre line, a street block's outline or a building footprint's outline wins; failing that, the nearest
point on one of those lines. The snapped coordinates are written into the operation itself (with the
tolerance, ``snap_m``), so what a reviewer approves is exactly what the editor previewed (an operation
is snapped once; approval never snaps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from grid_builder.edit.errors import EditRefused
from grid_builder.geom import to_metric, to_wgs84

SNAP_MAX_M = 10.0  # the largest tolerance a client may ask for
KINDS = ("road", "block", "building")  # snap target kinds (道路, 街区边界, 建筑轮廓)


@dataclass(frozen=True)
class Target:
    """A snapping target: its kind and its linework (metric)."""

    kind: str
    line: BaseGeometry


class Snapper:
    """Nearest vertex (else nearest point) of the targets within a tolerance."""

    def __init__(self, targets: list[Target]):
        self.targets = [t for t in targets if t.line is not None and not t.line.is_empty]
        self.tree = STRtree([t.line for t in self.targets]) if self.targets else None

    def snap(self, p: Point, tol: float) -> tuple[Point, Target | None, float]:
        """(the snapped point, the target it snapped to or None, the distance moved)."""
        if self.tree is None or tol <= 0:
            return p, None, 0.0
        hits = [int(i) for i in self.tree.query(p, predicate="dwithin", distance=tol)]
        if not hits:
            return p, None, 0.0
        xy = np.array([p.x, p.y])
        best: tuple[float, np.ndarray, int] | None = None
        for i in hits:  # vertices first
            c = shapely.get_coordinates(self.targets[i].line)
            d = np.hypot(*(c - xy).T)
            k = int(np.argmin(d))
            if d[k] <= tol and (best is None or d[k] < best[0]):
                best = (float(d[k]), c[k], i)
        if best is None:
            for i in hits:  # then the nearest point on a line
                line = self.targets[i].line
                q = line.interpolate(line.project(p))
                d = q.distance(p)
                if d <= tol and (best is None or d < best[0]):
                    best = (float(d), np.array([q.x, q.y]), i)
        if best is None:
            return p, None, 0.0
        return Point(best[1]), self.targets[best[2]], best[0]


def targets_from(roads: list[BaseGeometry], blocks: list[BaseGeometry], footprints: list[BaseGeometry]
                 ) -> list[Target]:
    """Targets from metric roads (lines), street blocks and footprints (polygons: their outlines)."""
    return ([Target("road", g) for g in roads] + [Target("block", g.boundary) for g in blocks]
            + [Target("building", g.boundary) for g in footprints])


def _snap_lonlat(snapper: Snapper, value: Any, tol: float) -> tuple[list[float], dict | None]:
    try:
        lon, lat = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return value, None  # left to the operation parser, which names the problem
    p = to_metric(Point(lon, lat))
    q, target, d = snapper.snap(p, tol)
    if target is None or d == 0.0:
        return [lon, lat], None
    ll = to_wgs84(q)
    return [round(ll.x, 9), round(ll.y, 9)], {"kind": target.kind, "distance_m": round(d, 3)}


def snap_ops(ops_raw: Any, snapper: Snapper, tol: float) -> tuple[Any, list[dict]]:
    """The operations with ``move_vertex`` targets and split-line points snapped (a copy), and what
    snapped: ``[{"op": index, "point": "to" | "line[i]", "kind", "distance_m"}]``. Each operation
    looked at records the tolerance (``snap_m``) and is never snapped again (a later preview of the
    same operations, the saved draft, the approval)."""
    if not (0 <= tol <= SNAP_MAX_M):
        raise EditRefused("bad_operation", f"吸附容差须在 0–{SNAP_MAX_M:g} 米之间 (snap tolerance must be "
                          f"0–{SNAP_MAX_M:g} m)")
    if not isinstance(ops_raw, list) or tol <= 0:
        return ops_raw, []
    out, snaps = [], []
    for n, op in enumerate(ops_raw):
        if not isinstance(op, dict):
            out.append(op)
            continue
        if "snap_m" in op or op.get("op") not in ("move_vertex", "split"):
            out.append(op)  # snapped before (snapping again could move a point once more) or nothing to snap
            continue
        op = {**op, "snap_m": tol}
        if op.get("op") == "move_vertex" and op.get("to") is not None:
            op["to"], s = _snap_lonlat(snapper, op["to"], tol)
            if s:
                snaps.append({"op": n, "point": "to", **s})
        elif op.get("op") == "split" and isinstance(op.get("line"), list):
            line = []
            for k, pt in enumerate(op["line"]):
                q, s = _snap_lonlat(snapper, pt, tol)
                line.append(q)
                if s:
                    snaps.append({"op": n, "point": f"line[{k}]", **s})
            op["line"] = line
        out.append(op)
    return out, snaps


def points_of(ops_raw: Any) -> list[tuple[float, float]]:
    """Every lon/lat point an operation may snap (to find the targets near them)."""
    pts: list[tuple[float, float]] = []
    for op in ops_raw if isinstance(ops_raw, list) else []:
        if not isinstance(op, dict):
            continue
        cand = [op.get("to")] if op.get("op") == "move_vertex" else (op.get("line") or []) \
            if op.get("op") == "split" else []
        for v in cand if isinstance(cand, list) else []:
            try:
                pts.append((float(v[0]), float(v[1])))
            except (TypeError, ValueError, IndexError):
                continue
    return pts
