"""H3 analysis grid: cells of any admin unit or grid with counts; one cell's parent/children/counts.

Domain errors (`grid_builder.errors`) reach the client through the shared error table (`gis_api.errors`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from shapely.geometry import mapping
from sqlalchemy.engine import Engine

from geo.geojson import feature, feature_collection
from gis_api.auth.deps import requires
from gis_api.deps import db_engine

router = APIRouter(prefix="/h3", tags=["h3 分析网格"], dependencies=[Depends(requires("features:read_internal"))])


@router.get("/cells", summary="区域的 H3 单元 (GeoJSON，带每格户数、建筑、兴趣点、地址计数)")
def cells(area: str = Query(..., description="行政区 / 社区 / 网格编码"),
          res: int = Query(10, ge=7, le=12, description="分辨率 7–12"),
          mode: str = Query("center", description="center（中心在内）| overlap（相交）| full（完全在内）"),
          engine: Engine = Depends(db_engine)):
    """H3 cells of an area with households, buildings, POIs (and addresses) per cell."""
    from grid_builder.service import h3_for_area

    rows = h3_for_area(engine, area, res, mode, save=False)
    feats = [feature(r["geom"], {"cell": r["cell"], "res": res, "households": round(r["households"]),
                                 "buildings": r["buildings"], "pois": r["pois"],
                                 **({"addresses": r["addresses"]} if "addresses" in r else {})}, id=r["cell"])
             for r in rows]
    return feature_collection(feats, area=area, res=res, mode=mode, numberReturned=len(feats))


@router.get("/{cell}", summary="一个 H3 单元：上级、下级、计数")
def cell(cell: str, engine: Engine = Depends(db_engine)):
    """One cell: parent, children, centre, area and the counts inside it."""
    from grid_builder import h3grid, store

    info = h3grid.cell_info(cell)
    with engine.connect() as conn:
        layers = store.located_things(conn, info["geom"])
    agg = {}
    for layer, pts in layers.items():
        c = h3grid.count_points([cell], pts, info["res"])[cell]
        agg[layer] = c["n"]
        if layer == "buildings":
            agg["households"] = round(c["w"])
    return {"cell": cell, "res": info["res"], "center": info["center"], "parent": info["parent"],
            "children": info["children"], "area_m2": round(info["area_m2"], 1),
            "geometry": mapping(info["geom"]), "counts": agg}
