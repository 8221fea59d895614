"""MapLibre / Mapbox GL styles (style spec v8) over the vector tiles: ``/styles`` and ``/styles/{id}.json``.

Thin: the style is built by `tiles.styles` from the layers the caller may read (internal layers only for staff).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.errors import NotFound
from gis_api.ogc_params import base_url, readable_layers
from tiles import styles

router = APIRouter(dependencies=[Depends(requires("tiles:read"))], tags=["矢量瓦片 vector tiles"])


@router.get("/styles", summary="地图样式列表 map styles")
def styles_list(request: Request):
    """可用的 MapLibre 样式。The MapLibre / Mapbox GL styles served (one: basemap + thematic layers)."""
    return styles.styles_list(base_url(request))


@router.get("/styles/{style_id}.json", summary="MapLibre 样式 style (spec v8)")
def style(style_id: str, request: Request, conn: Connection = Depends(db_conn, scope="function")):
    """底图与专题图层的 MapLibre 样式（style spec v8），只含调用者可读的图层；可直接用于 MapLibre GL JS 与
    QGIS（矢量瓦片 → 样式 URL）。The style of the basemap and thematic layers the caller may read."""
    if style_id != styles.STYLE_ID:
        raise NotFound(f"未知样式 {style_id!r}；可用：{styles.STYLE_ID} (unknown style)")
    layers = readable_layers(request, conn)
    public = all(layer.read_role == "public" for layer in layers)
    headers = {"Cache-Control": "public, no-cache" if public else "private, no-cache"}
    if public:
        headers["Access-Control-Allow-Origin"] = "*"
    return JSONResponse(styles.style(base_url(request), layers), media_type=styles.MEDIA_TYPE, headers=headers)
