"""Layer exports for office and desktop users (GeoPackage, Shapefile, GeoJSON, KML, CSV, xlsx).

Thin: the same layer check as the OGC items route (`gis_api.ogc_params.CollectionLayer`: 404 unknown,
401 / 403 for an internal layer), the same query SQL; parsing and writing live in `layers.export`.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.ogc_params import CollectionLayer
from layers import export

router = APIRouter(dependencies=[Depends(requires("features:read"))], tags=["导出 exports"])


@router.get(
    "/collections/{collection_id}/export",
    summary="导出图层 export a layer (gpkg, shp, geojson, kml, csv, xlsx)",
    response_class=Response,
    responses={200: {"content": {f.media_type: {} for f in export.FORMATS.values()}}},
)
def export_layer(
    request: Request,
    layer: CollectionLayer,
    conn: Connection = Depends(db_conn, scope="function"),
    format: str = Query("gpkg", description="gpkg | shp | geojson | kml | csv | xlsx"),  # noqa: A002
):
    """把图层（可按 bbox、datetime、CQL2 filter、属性=值 筛选）导出为一个文件：GeoPackage、Shapefile（zip，含 UTF-8
    的 .cpg）、GeoJSON、KML、CSV（UTF-8 带 BOM，Excel / WPS 直接打开）或 xlsx。与要素接口同样的权限与字段。
    One layer, optionally narrowed by `bbox`, `datetime`, a CQL2 `filter` or `name=value`, as one file; the
    same access rule and exposed properties as the items route (400 for a bad parameter, 413 when more than
    200,000 features match)."""
    fmt, q = export.parse_export_query(layer, request.query_params.multi_items())
    features = export.fetch_export_features(conn, layer, q)
    out = export.write_export(layer, features, fmt)
    disposition = f"attachment; filename=\"{out.filename}\"; filename*=UTF-8''{quote(out.filename)}"
    public = layer.read_role == "public"
    headers = {"Content-Disposition": disposition, "X-Feature-Count": str(out.count),
               "Cache-Control": "no-cache" if public else "private, no-store"}
    return Response(out.data, media_type=out.media_type, headers=headers)
