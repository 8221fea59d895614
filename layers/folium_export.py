"""Standalone folium HTML maps of registered layers (or any GeoJSON), openable with no network.

folium links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default. A planner's map
mailed around, or opened on the government intranet, cannot reach them, so the export drops the
CDN links and inlines the Leaflet JS/CSS installed by ``scripts/install_assets.sh`` (with its
images as data URIs). Nothing else is needed: features are GeoJSON layers with circle markers,
popups and a layer control, all plain Leaflet.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from geo.errors import InvalidInput, ShequError, Unavailable
from layers.registry import Layer

if TYPE_CHECKING:
    from branca.element import Figure

VENDOR = Path(__file__).resolve().parent.parent / "gis_api" / "static" / "vendor" / "leaflet"


class ExportError(ShequError, RuntimeError):
    """The export cannot be made (the CLI prints the message and exits with 1)."""


class NothingToDraw(ExportError, InvalidInput):
    """Every selected layer is empty."""


class AssetsMissing(ExportError, Unavailable):
    """The local Leaflet files are not installed, or the rendered page still links outside."""


@dataclass
class MapLayer:
    """One layer to draw: its title, style and a GeoJSON FeatureCollection (WGS84)."""

    title: str
    collection: dict
    style: dict
    fields: list[tuple[str, str]]  # (property, Chinese label) shown in popups
    point: bool = False
    label_field: str | None = None
    kind_weights: tuple[tuple[str, float], ...] = ()


def from_registry(layer: Layer, collection: dict) -> MapLayer:
    """A registered layer's features, drawn with its registry style, popups listing its properties."""
    style = layer.style.leaflet()
    if layer.geometry_family == "LineString":
        style["fill"] = False  # Leaflet would otherwise fill the hull of a curved road
    return MapLayer(
        title=layer.title_zh,
        collection=collection,
        style=style,
        fields=[(p.name, p.title_zh or p.name) for p in layer.properties],
        point=layer.geometry_family == "Point",
        label_field=layer.style.label_field,
        kind_weights=layer.style.kind_weights if "kind" in {p.name for p in layer.properties} else (),
    )


def from_geojson(title: str, collection: dict, color: str = "#e6550d") -> MapLayer:
    """Any FeatureCollection (an analysis result) in one colour; popups list its first simple properties."""
    feats = collection.get("features") or []
    keys: list[str] = []
    for f in feats[:200]:
        for k in (f.get("properties") or {}):
            if k not in keys and isinstance(f["properties"][k], (str, int, float, bool)):
                keys.append(k)
    point = bool(feats) and all((f.get("geometry") or {}).get("type") in ("Point", "MultiPoint") for f in feats)
    style = {"color": color, "weight": 2, "opacity": 1, "fillColor": color, "fillOpacity": 0.3, "radius": 5}
    return MapLayer(title=title, collection=collection, style=style, fields=[(k, k) for k in keys[:12]],
                    point=point)


def _bounds(layers: list[MapLayer]):
    import numpy as np

    xs, ys = [], []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for x in c:
                walk(x)

    for ml in layers:
        for f in ml.collection.get("features") or []:
            g = f.get("geometry")
            if g and g.get("coordinates") is not None:
                walk(g["coordinates"])
    if not xs:
        return None
    return [[float(np.min(ys)), float(np.min(xs))], [float(np.max(ys)), float(np.max(xs))]]


def build_map(layers: list[MapLayer], title: str = "社区 GIS 地图"):
    """A folium.Map (no tile basemap: the layers themselves are the map)."""
    import folium

    if not any(ml.collection.get("features") for ml in layers):
        raise NothingToDraw("没有可绘制的要素 nothing to draw: the selected layers are empty")
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    root = cast("Figure", m.get_root())
    root.header.add_child(folium.Element(f"<title>{_escape(title)}</title>"))
    for ml in layers:
        if not ml.collection.get("features"):
            continue
        style = dict(ml.style)
        weights = dict(ml.kind_weights)
        fields = [f for f, _ in ml.fields]
        aliases = [a for _, a in ml.fields]
        popup = folium.GeoJsonPopup(fields=fields, aliases=aliases, localize=False, labels=True) if fields else None
        tooltip = (folium.GeoJsonTooltip(fields=[ml.label_field], labels=False)
                   if ml.label_field and ml.label_field in fields else None)
        folium.GeoJson(
            ml.collection,
            name=ml.title,
            style_function=(lambda f, s=style, w=weights: {**s, "weight": w.get(f["properties"].get("kind"), s["weight"])})
            if weights else (lambda _f, s=style: s),
            marker=folium.CircleMarker(radius=style.get("radius", 4)) if ml.point else None,
            popup=popup,
            tooltip=tooltip,
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = _bounds(layers)
    if bounds:
        m.fit_bounds(bounds)
    title_html = (f'<div style="position:fixed;top:8px;left:50px;z-index:1000;background:#fff;padding:4px 10px;'
                  f'border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:14px sans-serif">{_escape(title)}'
                  f'<br><small>© OpenStreetMap 贡献者 · 社区 GIS 导出</small></div>')
    root.html.add_child(folium.Element(title_html))
    return m


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline_css(css: str, base: Path) -> str:
    def data_uri(match: re.Match) -> str:
        ref = match.group(1).strip("'\"")
        path = base / ref
        if ref.startswith("data:") or not path.exists():
            return match.group(0)
        mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.')}"
        return f"url(data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"url\(([^)]+)\)", data_uri, css)


_REMOTE_TAG = re.compile(r"""<(script|link)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//[^"']*["'][^>]*>(?:\s*</script>)?""",
                         re.IGNORECASE)


def offline_html(m) -> str:
    """Render the map with every CDN reference replaced by inlined local copies."""
    js, css = VENDOR / "leaflet.js", VENDOR / "leaflet.css"
    if not js.exists() or not css.exists():
        raise AssetsMissing(f"缺少本地 Leaflet 资源 {VENDOR}: run `bash scripts/install_assets.sh` (make assets)")
    m.default_js = []
    m.default_css = []
    html = m.get_root().render()
    html = _REMOTE_TAG.sub("", html)
    leftover = re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", html)
    if leftover:
        raise AssetsMissing(f"导出仍引用外部资源 the export still links outside: {leftover[:3]}")
    inline = (f"<style>{_inline_css(css.read_text(encoding='utf-8'), VENDOR)}</style>\n"
              f"<script>{js.read_text(encoding='utf-8')}</script>\n")
    head = re.search(r"<head[^>]*>", html)
    if head is None:  # pragma: no cover - folium always renders a head
        raise ExportError("folium output has no <head>")
    return html[:head.end()] + '\n<meta charset="utf-8">\n' + inline + html[head.end():]


def export(layers: list[MapLayer], path: Path, title: str = "社区 GIS 地图") -> Path:
    """Write the layers as one standalone offline HTML file at ``path`` (folders created); returns the path."""
    html = offline_html(build_map(layers, title))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
