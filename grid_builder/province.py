"""H3 aggregation for many districts at once, on Dask (issue 14 §3): one partition per district.

The per-partition function (:func:`h3_partition`) is the pure core of `shequ grid h3` —
:func:`grid_builder.h3grid.aggregate` over one area and the weighted points read for it — and takes and
returns plain data (a shapely area, lists of ``(lon, lat, weight)``, cell dicts). The driver reads each
partition's inputs from PostGIS with the same store functions `shequ grid h3` uses
(``area_geometry`` + ``located_things``) and hands them to the cluster as it reads them; the workers never
open a database connection. Why the driver reads and not the workers: the workers of a real cluster then
need no database credentials, no route to PostGIS and no copy of the settings (the task graph carries no
``DATABASE_URL``), and the same partition function runs on an in-memory synthetic city. The cost is that the
reads are serial on the driver; docs/scaling.md §4 gives the measured read / compute split.

The other way, ``reader="worker"``: each task gets only its area code and the worker reads its own
partition (:func:`h3_from_db`) through `geo.cluster.worker_engine` — ``DATABASE_URL`` of the worker's environment
(a LocalCluster's workers inherit the driver's), never credentials in the task graph. The reads then run
in parallel on the workers and the driver holds no partition; the workers must reach PostGIS. Same
answers (tests); docs/scaling.md §4 compares the two.

``workers=0`` runs the same partitions one after another in this process (the single-process reference the
tests compare the cluster's answers with).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from geo.cluster import READERS, check_reader, run_partitions
from grid_builder import h3grid, store
from grid_builder.errors import GridNotFound

__all__ = ["LEVELS", "READERS", "H3Partition", "check_reader", "h3_from_db", "h3_partition", "h3_province",
           "partition_codes", "partitions_from_points", "read_partitions", "run_partitions"]

LEVELS = ("district", "township", "community")


@dataclass(frozen=True)
class H3Partition:
    """One area's inputs: its lon/lat boundary and the weighted points of each layer around it."""

    code: str
    area: BaseGeometry
    layers: dict[str, list[tuple[float, float, float]]]


def h3_partition(part: H3Partition, res: int, mode: str) -> tuple[str, list[dict]]:
    """(area code, cells with counts): `h3grid.aggregate` of one partition (a Dask task; pure)."""
    return part.code, h3grid.aggregate(part.area, res, mode, part.layers)


def h3_from_db(code: str, res: int, mode: str) -> tuple[str, list[dict]]:
    """A worker reads its own partition (``DATABASE_URL`` of its environment) and computes it (a Dask task)."""
    from geo.cluster import worker_engine

    [part] = read_partitions(worker_engine(), [code], res)
    return h3_partition(part, res, mode)


# ------------------------------------------------------------------------------------------- inputs


def partition_codes(conn: Any, level: str = "district", codes: Sequence[str] | None = None) -> list[str]:
    """The areas to partition by: ``codes`` when given, else the districts holding at least one building
    (``level`` district) or every current unit of ``level`` with a boundary."""
    if level not in LEVELS:
        raise h3grid.H3Error(f"分区级别须为 {'/'.join(LEVELS)} (level must be one of {LEVELS}), got {level!r}")
    if codes:
        return list(dict.fromkeys(codes))
    if level == "district":
        return store.districts_with_buildings(conn)
    return [u["code"] for u in store.admin_units(conn, level)]


def read_partitions(engine: Engine, codes: Sequence[str], res: int) -> Iterator[H3Partition]:
    """Each area's inputs from PostGIS, one area at a time (what `shequ grid h3 --area` reads). Every
    area's cell budget is checked before anything is read (`TooManyCells` names the limit)."""
    areas = []
    with engine.connect() as conn:
        for code in codes:
            found = store.area_geometry(conn, code)
            if found is None:
                raise GridNotFound(f"区域 {code} 不存在 (no admin unit or grid with this code)")
            h3grid.check_cell_budget(found[1], res)
            areas.append((code, found[1]))
    for code, geom in areas:
        with engine.connect() as conn:
            layers = store.located_things(conn, geom)
        yield H3Partition(code, geom, layers)


def partitions_from_points(
    areas: Sequence[tuple[str, BaseGeometry]], layers: dict[str, list[tuple[float, float, float]]], res: int
) -> list[H3Partition]:
    """Partitions of in-memory points (pure): each area gets the points inside its bounding box grown by one
    cell edge, so every point a cell of the area can hold is in its partition (the answers equal
    `h3grid.aggregate` over all the points)."""
    # a point lies within one edge of its cell centre, an overlap cell within one edge of the area: 3 edges
    # in degrees (longitude degrees are shorter by cos(lat) ≥ 0.8 below 36°N; generous elsewhere too)
    pad = 3.0 * h3.average_hexagon_edge_length(res, unit="km") / 111.0 / 0.8
    arrays = {k: np.asarray(v, dtype=float).reshape(-1, 3) for k, v in layers.items()}
    out = []
    for code, geom in areas:
        minx, miny, maxx, maxy = geom.bounds
        part: dict[str, list[tuple[float, float, float]]] = {}
        for k, a in arrays.items():
            inside = (a[:, 0] >= minx - pad) & (a[:, 0] <= maxx + pad) & (a[:, 1] >= miny - pad) & (a[:, 1] <= maxy + pad)
            part[k] = [(float(x), float(y), float(w)) for x, y, w in a[inside]]
        out.append(H3Partition(code, geom, part))
    return out


# ------------------------------------------------------------------------------------------------ job


def h3_province(
    engine: Engine,
    res: int,
    mode: str = "center",
    *,
    level: str = "district",
    codes: Sequence[str] | None = None,
    save: bool = False,
    reader: str = "driver",
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
) -> dict[str, list[dict]]:
    """{area code: cells with counts} for every partition (see :func:`partition_codes`), computed on Dask;
    each area's answer equals `grid_builder.service.h3_for_area` for it. ``save`` writes each area's cells
    to the h3_cell layer (on the driver, one transaction per area). ``reader``: who reads each partition
    from PostGIS, the driver (default) or the worker computing it (see the module's docstring)."""
    h3grid.check(res, mode)
    check_reader(reader)
    with engine.connect() as conn:
        chosen = partition_codes(conn, level, codes)
    if reader == "worker":
        with engine.connect() as conn:
            for code in chosen:  # refusals before any task: unknown areas, too many cells
                found = store.area_geometry(conn, code)
                if found is None:
                    raise GridNotFound(f"区域 {code} 不存在 (no admin unit or grid with this code)")
                h3grid.check_cell_budget(found[1], res)
        answers = run_partitions(h3_from_db, chosen, res, mode, workers=workers, scheduler=scheduler, client=client)
    else:
        answers = run_partitions(h3_partition, read_partitions(engine, chosen, res), res, mode,
                                 workers=workers, scheduler=scheduler, client=client)
    out = dict(answers)
    if save:
        for code, cells in out.items():
            with engine.begin() as conn:
                store.write_h3_cells(conn, code, res, mode, cells)
    return out
