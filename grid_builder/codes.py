"""Hierarchical codes: GB/T 2260 district (6) + township (3) + community (3) + grid (3) + micro-grid (2).

Children are numbered west→east within rows taken north→south (自西向东、自北向南), the order the
Beijing and CJ/T 349-2010 grid standards describe.
"""

from __future__ import annotations

import math


def west_east_north_south(points: list[tuple[float, float]], row_height: float | None = None) -> list[int]:
    """Indices of ``points`` (metric x, y; the project uses area centroids) in numbering order.

    Points are cut into rows north→south (a new row starts when a point lies more than ``row_height``
    below the first point of the current row), then read west→east inside each row.
    ``row_height`` defaults to the typical spacing sqrt(bbox area / n).
    """
    n = len(points)
    if n == 0:
        return []
    if row_height is None:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        span = max((max(xs) - min(xs)) * (max(ys) - min(ys)), 1.0)
        row_height = max(math.sqrt(span / n), 1.0)
    by_north = sorted(range(n), key=lambda i: (-points[i][1], points[i][0], i))
    rows: list[list[int]] = []
    top = None
    for i in by_north:
        if top is None or top - points[i][1] > row_height:
            rows.append([])
            top = points[i][1]
        rows[-1].append(i)
    out: list[int] = []
    for row in rows:
        out.extend(sorted(row, key=lambda i: (points[i][0], -points[i][1], i)))
    return out


def child_codes(parent_code: str, count: int, digits: int, start: int = 1) -> list[str]:
    """``count`` child codes of ``parent_code`` with ``digits``-digit sequence numbers from ``start``."""
    if count + start - 1 >= 10**digits:
        raise ValueError(f"{parent_code}: {count} children do not fit in {digits} digits")
    return [f"{parent_code}{i:0{digits}d}" for i in range(start, start + count)]


def level_of(code: str) -> str:
    """Level implied by a code's length."""
    return {6: "district", 9: "township", 12: "community", 15: "grid", 17: "microgrid"}.get(
        len(code), "unknown"
    )
