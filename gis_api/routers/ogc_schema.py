"""``/collections/{id}/schema``: the JSON Schema of a layer's features (the collection's ``describedby`` link).

GDAL's OAPIF driver types its fields from this document; without it, it guesses from the first 20 features
and reads a real column whose first values are whole numbers as an integer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gis_api.auth.deps import requires
from gis_api.ogc_params import SCHEMA_RESPONSES, CollectionLayer, base_url
from layers import ogc

router = APIRouter(dependencies=[Depends(requires("features:read"))], tags=["OGC API Features 要素服务"])


@router.get("/collections/{collection_id}/schema", summary="要素结构 feature schema (JSON Schema)",
            responses=SCHEMA_RESPONSES)
def feature_schema(request: Request, layer: CollectionLayer):
    """一个图层要素的 JSON Schema（字段类型）。The JSON Schema of one feature of the layer: its properties and
    their types (404 unknown layer, 401 / 403 internal layer without staff rights)."""
    accept = request.headers.get("accept", "")
    media = "application/json" if "json" in accept and "schema+json" not in accept else "application/schema+json"
    return JSONResponse(ogc.schema_doc(layer, base_url(request)), media_type=media)
