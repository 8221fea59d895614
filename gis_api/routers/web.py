"""``/``: the offline web map for browsers, the OGC API landing document for API clients.

Content negotiation: ``?f=html`` or an ``Accept`` listing ``text/html`` (browsers) gives the HTML map
(``gis_api/static/index.html``, whose JS/CSS are all served locally from ``/static``); otherwise
(``?f=json``, JSON or ``*/*``) the landing JSON. ``/map/layers.json`` tells the page which layers exist, with styles and URLs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.engine import Connection

from gis_api.auth.deps import open_route
from gis_api.deps import db_conn
from gis_api.errors import BadRequest, ServiceUnavailable
from gis_api.ogc_params import base_url, readable_layers
from layers import ogc
from layers.presence import shown_by_default
from layers.registry import BASEMAP_ID

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(dependencies=[Depends(open_route("web map page and its layer list: public by design, the layers filtered by role"))], tags=["web 网页地图"])


def wants_json(request: Request) -> bool:
    """True when the caller wants the landing JSON (``?f=json`` or no ``text/html`` in Accept), not the map."""
    f = request.query_params.get("f")
    if f is not None:
        if f in ("json", "application/json"):
            return True
        if f in ("html", "text/html"):
            return False
        raise BadRequest(f"不支持的格式 f={f!r}（可用 json / html）")
    # Browsers ask for text/html; API clients (OWSLib, QGIS, curl) send JSON or */*.
    accept = request.headers.get("accept", "").lower()
    return "text/html" not in accept


@router.get("/", summary="网页地图（浏览器）或 OGC API 首页（?f=json）", response_model=None)
def landing(request: Request):
    """浏览器得到离线网页地图；API 客户端（`?f=json` 或 JSON Accept）得到 OGC API 首页文档。Browsers get the
    offline web map (HTML); API clients (`?f=json`, or an `Accept` without `text/html`) get the OGC API landing
    document with links to the conformance, collections and API definition. 400 for another `f`."""
    if wants_json(request):
        return JSONResponse(ogc.landing_doc(base_url(request)))
    index = STATIC_DIR / "index.html"
    if not index.exists():  # pragma: no cover - a broken install
        raise ServiceUnavailable("网页地图文件缺失 gis_api/static/index.html")
    return FileResponse(index, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/map/layers.json", summary="网页地图的图层清单 layers for the web map (styles, URLs)")
def map_layers(request: Request, conn: Connection = Depends(db_conn, scope="function")):
    """网页地图可用的图层：样式、瓦片与要素地址、底图组成、初始视野。The layers the web map may show to this
    caller: styles, tile and items URLs, the basemap's layers and the initial view."""
    base = base_url(request)
    layers = readable_layers(request, conn)
    out = []
    shown = shown_by_default(conn, layers)  # an empty layer is listed but not ticked
    for layer in layers:
        d = layer.public_dict()
        d["web_default"] = d["web_default"] and (layer.basemap or layer.id in shown)
        d["tiles"] = f"{base}/collections/{layer.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
        d["items"] = f"{base}/collections/{layer.id}/items"
        out.append(d)
    return {
        "basemap": {
            "id": BASEMAP_ID,
            "title": "矢量底图",
            "tiles": f"{base}/tiles/{BASEMAP_ID}/{{z}}/{{x}}/{{y}}.mvt",
            "layers": [layer.id for layer in layers if layer.basemap],
        },
        "layers": out,
        # The demo area: Shanghai Bund / Lujiazui.
        "center": [31.2387, 121.4985],
        "zoom": 15,
        "bounds": [[31.2264, 121.4802], [31.2510, 121.5208]],
    }
