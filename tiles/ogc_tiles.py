"""OGC API - Tiles documents (pure): the WebMercatorQuad tile matrix set, tileset metadata and tilesets lists.

Specs: OGC API - Tiles - Part 1: Core (20-057) and the Two Dimensional Tile Matrix Set and Tile Set Metadata
standard (17-083r4, TMS 2.0 JSON). Tiles are served at ``…/tiles/WebMercatorQuad/{z}/{x}/{y}``, so the
templated ``item`` links read ``{tileMatrix}/{tileCol}/{tileRow}`` (the variable names the standard fixes,
in our path order).
"""

from __future__ import annotations

from typing import Any

from layers.registry import Layer
from tiles.tms import MAX_ZOOM

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
MVT = "application/vnd.mapbox-vector-tile"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
]

_HALF_WORLD = 20037508.3427892  # EPSG:3857 metres from the origin to the antimeridian
_CELL_0 = 2 * _HALF_WORLD / 256  # metres per pixel at zoom 0 (256-pixel tiles)
_PIXEL_MM = 0.28  # the standardized rendering pixel size (OGC), for scale denominators


def tile_matrix_set() -> dict[str, Any]:
    """The full WebMercatorQuad definition (TMS 2.0 JSON), zooms 0 to ``MAX_ZOOM``."""
    matrices = []
    for z in range(MAX_ZOOM + 1):
        cell = _CELL_0 / 2**z
        matrices.append({
            "id": str(z),
            "scaleDenominator": cell / (_PIXEL_MM / 1000),
            "cellSize": cell,
            "cornerOfOrigin": "topLeft",
            "pointOfOrigin": [-_HALF_WORLD, _HALF_WORLD],
            "tileWidth": 256,
            "tileHeight": 256,
            "matrixWidth": 2**z,
            "matrixHeight": 2**z,
        })
    return {
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World（Web 墨卡托）",
        "uri": TMS_URI,
        "crs": CRS_3857,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


def tile_matrix_sets(base: str) -> dict[str, Any]:
    """``/tileMatrixSets``: the one tile matrix set served."""
    return {"tileMatrixSets": [{
        "id": TMS_ID, "title": "Web 墨卡托 WebMercatorQuad", "uri": TMS_URI, "crs": CRS_3857,
        "links": [{"rel": "self", "type": "application/json", "title": TMS_ID,
                   "href": f"{base}/tileMatrixSets/{TMS_ID}"}],
    }]}


def _vector_layer(layer: Layer) -> dict[str, Any]:
    return {
        "id": layer.id,
        "title": layer.title_zh,
        "dataType": "vector",
        "geometryDimension": {"Point": 0, "LineString": 1, "Polygon": 2}[layer.geometry_family],
        "minTileMatrix": str(layer.min_zoom),
        "maxTileMatrix": str(min(layer.max_zoom, MAX_ZOOM)),
        "propertiesSchema": {"type": "object", "properties": {
            p.name: {"title": p.title_zh or p.name,
                     "type": {"integer": "integer", "number": "number", "boolean": "boolean"}.get(p.type, "string")}
            for p in layer.properties}},
    }


def _limits(layers: list[Layer]) -> list[dict[str, Any]]:
    """Per zoom the layers are drawn at, the whole matrix (tiles outside the data are empty, not errors)."""
    lo = min((layer.min_zoom for layer in layers), default=0)
    hi = min(max((layer.max_zoom for layer in layers), default=MAX_ZOOM), MAX_ZOOM)
    return [{"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": 2**z - 1, "minTileCol": 0,
             "maxTileCol": 2**z - 1} for z in range(lo, hi + 1)]


def _tileset_head(title: str, tileset_url: str, base: str) -> dict[str, Any]:
    """What a tileset's metadata and its entry in a tilesets list share: title, type, CRS, tiling scheme,
    and the self / tiling-scheme links."""
    return {
        "title": title,
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {"rel": "self", "type": "application/json", "title": title, "href": tileset_url},
            {"rel": REL_TILING_SCHEME, "type": "application/json", "title": TMS_ID,
             "href": f"{base}/tileMatrixSets/{TMS_ID}"},
        ],
    }


def tileset(title: str, tileset_url: str, tile_template: str, layers: list[Layer], base: str,
            tilejson_url: str, bbox: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """Tileset metadata of a vector tileset (one layer, or the multi-layer basemap); ``bbox`` (WGS84, the
    data's extent) is reported as the tileset's bounding box."""
    doc = _tileset_head(title, tileset_url, base)
    doc["links"] += [
        {"rel": "item", "type": MVT, "templated": True, "title": "矢量瓦片 MVT",
         "href": tile_template.format(z="{tileMatrix}", x="{tileCol}", y="{tileRow}")},
        {"rel": "alternate", "type": "application/json", "title": "TileJSON", "href": tilejson_url},
    ]
    doc["tileMatrixSetLimits"] = _limits(layers)
    doc["layers"] = [_vector_layer(layer) for layer in layers]
    if bbox is not None:
        doc["boundingBox"] = {"lowerLeft": [bbox[0], bbox[1]], "upperRight": [bbox[2], bbox[3]],
                              "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    return doc


def tilesets_list(title: str, tileset_url: str, base: str) -> dict[str, Any]:
    """A tilesets list holding one WebMercatorQuad vector tileset."""
    return {
        "links": [{"rel": "self", "type": "application/json", "href": tileset_url.rsplit("/", 1)[0]}],
        "tilesets": [_tileset_head(title, tileset_url, base)],
    }
