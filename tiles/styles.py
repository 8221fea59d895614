"""MapLibre / Mapbox GL style (style spec v8) for the basemap and the thematic layers (pure).

Drawn from the layer registry's own styles, so a new layer shows in the style as it does on the Leaflet map:
polygons as fill + outline, lines with widths by ``kind``, points as circles. The basemap layers read the
multi-layer basemap source; each other layer reads its own TileJSON source, visible when the web map shows
it by default. No symbol (text) layers yet, so no glyphs or sprites are needed; CJK labels are meant to be
drawn by the browser (``localIdeographFontFamily`` in MapLibre GL JS).
"""

from __future__ import annotations

from typing import Any

from layers.registry import BASEMAP_ID, Layer
from tiles.tms import MAX_ZOOM

STYLE_ID = "shequ"
STYLE_TITLE = "社区 GIS 底图与专题图层"
MEDIA_TYPE = "application/vnd.mapbox.style+json"
BACKGROUND = "#f2efe9"
CENTER = [121.5005, 31.2387]


def _zooms(layer: Layer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if layer.min_zoom > 0:
        out["minzoom"] = layer.min_zoom
    if layer.max_zoom < 24:
        out["maxzoom"] = min(layer.max_zoom + 1, 24)
    return out


def _line_width(layer: Layer) -> Any:
    s = layer.style
    if not s.kind_weights:
        return s.weight
    expr: list[Any] = ["match", ["get", "kind"]]
    for kind, width in s.kind_weights:
        expr += [kind, width]
    return [*expr, s.weight]


def _style_layers(layer: Layer, source: str, visible: bool) -> list[dict[str, Any]]:
    s = layer.style
    common: dict[str, Any] = {"source": source, "source-layer": layer.id, **_zooms(layer),
                              "layout": {"visibility": "visible" if visible else "none"},
                              "metadata": {"shequ:layer": layer.id, "shequ:title": layer.title_zh}}
    family = layer.geometry_family
    if family == "Polygon":
        return [
            {"id": f"{layer.id}-fill", "type": "fill", **common,
             "paint": {"fill-color": s.fill_color or s.color, "fill-opacity": s.fill_opacity}},
            {"id": f"{layer.id}-outline", "type": "line", **common,
             "paint": {"line-color": s.color, "line-width": s.weight, "line-opacity": s.opacity}},
        ]
    if family == "LineString":
        paint: dict[str, Any] = {"line-color": s.color, "line-width": _line_width(layer), "line-opacity": s.opacity}
        if s.dash_array:
            paint["line-dasharray"] = [float(v) / max(s.weight, 0.1) for v in s.dash_array.split()]
        return [{"id": f"{layer.id}-line", "type": "line", **common, "paint": paint}]
    return [{"id": f"{layer.id}-circle", "type": "circle", **common,
             "paint": {"circle-color": s.fill_color or s.color, "circle-radius": s.radius,
                       "circle-opacity": s.fill_opacity, "circle-stroke-color": "#ffffff", "circle-stroke-width": 0.5}}]


def style(base: str, layers: list[Layer]) -> dict[str, Any]:
    """The style for the layers the caller may read (``base``: the API root URL, no trailing slash)."""
    sources: dict[str, Any] = {BASEMAP_ID: {
        "type": "vector", "url": f"{base}/tiles/{BASEMAP_ID}/tilejson.json",
        "attribution": "© OpenStreetMap contributors (ODbL)"}}
    out_layers: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                         "paint": {"background-color": BACKGROUND}}]
    for layer in layers:
        if layer.basemap:
            out_layers += _style_layers(layer, BASEMAP_ID, True)
    for layer in layers:
        if layer.basemap:
            continue
        sources[layer.id] = {"type": "vector", "maxzoom": MAX_ZOOM,
                             "url": f"{base}/collections/{layer.id}/tiles/WebMercatorQuad/tilejson.json"}
        out_layers += _style_layers(layer, layer.id, layer.web_default)
    return {
        "version": 8,
        "name": STYLE_TITLE,
        "metadata": {"shequ:style": STYLE_ID, "maplibre:localIdeographFontFamily": "sans-serif"},
        "center": CENTER,
        "zoom": 14,
        "sources": sources,
        "layers": out_layers,
    }


def styles_list(base: str) -> dict[str, Any]:
    """``/styles``: the styles served, with their stylesheet links."""
    return {"styles": [{"id": STYLE_ID, "title": STYLE_TITLE, "links": [
        {"rel": "stylesheet", "type": MEDIA_TYPE, "title": "MapLibre / Mapbox GL style v8",
         "href": f"{base}/styles/{STYLE_ID}.json"}]}]}
