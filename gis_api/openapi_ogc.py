"""What generic OGC API clients read from the OpenAPI document, added to FastAPI's generated one.

GDAL's OAPIF driver decides whether to send its attribute filter to the server by reading, in the OpenAPI
document, the items operation of ``/collections/<layer>/items`` or else ``/collections/{collectionId}/items``
(the spelling of the OGC examples): a ``filter-lang`` query parameter whose enum lists ``cql-text``, and
query parameters named like the layer's properties (the fields it may filter on the server). Our route
spells the path parameter ``collection_id``, so the document also lists the operation under the OGC
spelling and once per registered layer with that layer's properties, as pygeoapi and ldproxy do.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from gis_api.params import MAX_OFFSET
from layers import ogc
from layers.registry import all_layers

ITEMS = "/collections/{collection_id}/items"
OGC_ITEMS = "/collections/{collectionId}/items"

#: the Part 3 parameters of the items route, as OpenAPI parameters (values are read from the query string)
FILTER_PARAMETERS: list[dict[str, Any]] = [
    {"name": "filter", "in": "query", "required": False,
     "description": "CQL2 过滤表达式 a CQL2 filter, e.g. `height_m > 50 AND name LIKE '%大厦%'`",
     "schema": {"type": "string", "minLength": 1}},
    {"name": "filter-lang", "in": "query", "required": False,
     "description": "过滤语言 filter language (cql-text: the pre-CQL2 name, read as cql2-text)",
     "schema": {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"], "default": "cql2-text"}},
    {"name": "filter-crs", "in": "query", "required": False, "description": "过滤几何的坐标系（仅 CRS84）",
     "schema": {"type": "string", "enum": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]}},
]


def _alias(operation: dict[str, Any]) -> dict[str, Any]:
    op = copy.deepcopy(operation)
    op["operationId"] = f"{op.get('operationId', 'items')}_ogc"
    for param in op.get("parameters", []):
        if param.get("in") == "path" and param.get("name") == "collection_id":
            param["name"] = "collectionId"
    op["summary"] = f"{op.get('summary', '')}（同 {ITEMS}）"
    return op


_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def _layer_items(operation: dict[str, Any], layer) -> dict[str, Any]:
    op = copy.deepcopy(operation)
    op["operationId"] = f"{op.get('operationId', 'items')}_{layer.id}"
    op["summary"] = f"{layer.title_zh}要素 features of {layer.id}"
    params = [p for p in op.get("parameters", []) if p.get("in") != "path"]
    for prop in layer.properties:
        params.append({"name": prop.name, "in": "query", "required": False,
                       "description": f"按{prop.title_zh or prop.name}等值过滤 equality filter",
                       "schema": {"type": _JSON_TYPES.get(prop.type, "string")}, "style": "form", "explode": False})
    op["parameters"] = params
    return op


def _integer_paging(operation: dict[str, Any]) -> None:
    """Declare ``limit`` / ``offset`` as the bounded integers the route accepts (they are read as text so
    that a bad value is the OGC 400 with ``detail.parameter``, not FastAPI's 422)."""
    bounds = {"limit": {"type": "integer", "minimum": 1, "maximum": ogc.MAX_LIMIT, "default": ogc.DEFAULT_LIMIT},
              "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}}
    for param in operation.get("parameters", []):
        if param.get("in") == "query" and param.get("name") in bounds:
            param["schema"] = dict(bounds[param["name"]])


def add_ogc_paths(app: FastAPI) -> None:
    """Make ``app.openapi()`` also list the items operation under ``/collections/{collectionId}/items`` and
    ``/collections/<layer>/items`` (every registered layer, with its properties as query parameters)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()  # FastAPI caches it; the alias is added once
        paths = doc.get("paths", {})
        if ITEMS in paths and OGC_ITEMS not in paths:
            for op in paths[ITEMS].values():
                _integer_paging(op)
            paths[OGC_ITEMS] = {method: _alias(op) for method, op in paths[ITEMS].items()}
            for layer in all_layers():
                paths.setdefault(f"/collections/{layer.id}/items",
                                 {method: _layer_items(op, layer) for method, op in paths[ITEMS].items()})
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
