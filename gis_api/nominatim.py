"""Nominatim-compatible output over the native geocoding results (pure: plain dicts in, plain dicts out).

The native ``/geocode`` and ``/reverse`` routes define the fields used here (``address_code``, ``formatted``,
``components``, ``lon``, ``lat``, ``level``, ``score``; reverse adds ``district`` … ``grid``), so this module
never depends on the geocoder's internals. Output follows Nominatim's ``json``, ``jsonv2``, ``geojson`` and
``geocodejson`` formats; the standard-address code, level, score and grid are extra ``shequ:*`` fields.
"""

from __future__ import annotations

import zlib
from typing import Any

from geo.errors import BadRequest

FORMATS = ("json", "jsonv2", "geojson", "geocodejson")
LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0; 标准地址 © Shequ GIS"
#: native address components → Nominatim address keys (coarse to fine)
ADDRESS_KEYS = (
    ("province", "state"), ("city", "city"), ("district", "city_district"), ("township", "suburb"),
    ("community", "neighbourhood"), ("road", "road"), ("compound", "residential"), ("house_number", "house_number"),
    ("building", "building"),
)
#: native level → (Nominatim class, type, place_rank, addresstype)
LEVELS = {
    "road": ("highway", "residential", 26, "road"),
    "house_number": ("place", "house", 30, "place"),
    "building": ("building", "yes", 30, "building"),
    "unit": ("building", "yes", 30, "building"),
    "floor": ("building", "yes", 30, "building"),
    "room": ("building", "yes", 30, "building"),
    "compound": ("landuse", "residential", 22, "residential"),
}
STRUCTURED = ("amenity", "street", "city", "county", "state", "country", "postalcode")


def parse_format(value: str | None, default: str = "jsonv2") -> str:
    """The output format (``json``, ``jsonv2``, ``geojson`` or ``geocodejson``)."""
    fmt = (value or default).lower()
    if fmt not in FORMATS:
        raise BadRequest(f"不支持的格式 format={value!r}；可用：{', '.join(FORMATS)} (unsupported format)",
                         detail={"parameter": "format"})
    return fmt


def parse_flag(value: str | None, name: str, default: bool = False) -> bool:
    """A Nominatim 0/1 flag."""
    if value is None or value == "":
        return default
    if value not in ("0", "1", "true", "false"):
        raise BadRequest(f"{name} 应为 0 或 1：{value!r} ({name} must be 0 or 1)", detail={"parameter": name})
    return value in ("1", "true")


def parse_viewbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``viewbox=x1,y1,x2,y2`` (any two opposite corners, lon/lat) as (minlon, minlat, maxlon, maxlat)."""
    if not value:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value.split(","))
    except ValueError:
        raise BadRequest(f"viewbox 应为 4 个逗号分隔的数字 x1,y1,x2,y2：{value!r} (viewbox must be 4 numbers)",
                         detail={"parameter": "viewbox"}) from None
    box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    if not (-180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90) or box[0] == box[2] or box[1] == box[3]:
        raise BadRequest("viewbox 超出经纬度范围或面积为零 (viewbox out of range or empty)",
                         detail={"parameter": "viewbox"})
    return box


def structured_query(params: dict[str, str]) -> str:
    """A free-text query from Nominatim's structured fields, in Chinese order (省 市 区 街道 门牌 / 地点)."""
    order = ("country", "state", "city", "county", "street", "amenity")
    parts = [params[k].strip() for k in order if params.get(k, "").strip() and params[k].strip() != "中国"]
    return "".join(parts)


def in_box(result: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    """Whether a result's point lies in the (minlon, minlat, maxlon, maxlat) box."""
    lon, lat = result.get("lon"), result.get("lat")
    return lon is not None and lat is not None and box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def place_id(code: str) -> int:
    """A stable integer id for an address code (Nominatim clients expect an integer ``place_id``)."""
    return int(code) if (code.isascii() and code.isdigit()) and len(code) <= 18 else zlib.crc32(code.encode())


def address(components: dict[str, Any]) -> dict[str, str]:
    """Nominatim's ``address`` object from the native components."""
    out = {key: str(components[src]) for src, key in ADDRESS_KEYS if components.get(src)}
    out["country"] = "中国"
    out["country_code"] = "cn"
    return out


def _name(result: dict[str, Any]) -> str:
    comps = result.get("components") or {}
    road, number = comps.get("road") or "", comps.get("house_number") or ""
    return comps.get("building") or comps.get("compound") or f"{road}{number}" or result.get("formatted", "")


_NO_GRID: Any = object()


def place(result: dict[str, Any], fmt: str, *, details: bool, grid: Any = _NO_GRID) -> dict[str, Any]:
    """One native result (``/geocode`` or ``/reverse``'s address) as a Nominatim place (json / jsonv2);
    ``grid`` (the native reverse's grid, None outside every grid) is added as ``shequ:grid`` when given."""
    cls, typ, rank, addresstype = LEVELS.get(result.get("level", ""), ("place", "yes", 30, "place"))
    lon, lat = float(result["lon"]), float(result["lat"])
    code = str(result["address_code"])
    out: dict[str, Any] = {
        "place_id": place_id(code),
        "licence": LICENCE,
        "osm_type": "node",
        "osm_id": place_id(code),
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        ("category" if fmt == "jsonv2" else "class"): cls,
        "type": typ,
        "place_rank": rank,
        "importance": float(result.get("score", 1.0)),
        "addresstype": addresstype,
        "name": _name(result),
        "display_name": result.get("formatted", ""),
        "boundingbox": [f"{lat - 0.0001:.7f}", f"{lat + 0.0001:.7f}", f"{lon - 0.0001:.7f}", f"{lon + 0.0001:.7f}"],
        "shequ:address_code": code,
        "shequ:level": result.get("level"),
        "shequ:score": result.get("score"),
    }
    if fmt == "json":
        del out["place_rank"], out["addresstype"], out["name"]
    if "distance_m" in result:
        out["shequ:distance_m"] = result["distance_m"]
    if grid is not _NO_GRID:
        out["shequ:grid"] = grid
    if details:
        out["address"] = address(result.get("components") or {})
    return out


def feature_collection(places: list[dict[str, Any]], fmt: str, query: str) -> dict[str, Any]:
    """``geojson`` / ``geocodejson`` FeatureCollection of places built by :func:`place` (jsonv2 form)."""
    features = []
    for p in places:
        geometry = {"type": "Point", "coordinates": [float(p["lon"]), float(p["lat"])]}
        if fmt == "geojson":
            props = {k: v for k, v in p.items() if k not in ("lat", "lon", "boundingbox", "licence")}
            bbox = [float(p["boundingbox"][2]), float(p["boundingbox"][0]), float(p["boundingbox"][3]),
                    float(p["boundingbox"][1])]
            features.append({"type": "Feature", "properties": props, "bbox": bbox, "geometry": geometry})
            continue
        addr = p.get("address") or {}
        geocoding = {
            "place_id": p["place_id"], "osm_type": p["osm_type"], "osm_id": p["osm_id"],
            "type": p.get("addresstype", p["type"]), "label": p["display_name"], "name": p.get("name"),
            "housenumber": addr.get("house_number"), "street": addr.get("road"), "city": addr.get("city"),
            "district": addr.get("city_district"), "state": addr.get("state"), "country": "中国",
            "country_code": "cn",
            "admin": {k: v for k, v in (("level4", addr.get("state")), ("level6", addr.get("city_district")),
                                        ("level8", addr.get("suburb"))) if v},
            "shequ:address_code": p["shequ:address_code"], "shequ:level": p["shequ:level"],
        }
        if "shequ:grid" in p:
            geocoding["shequ:grid"] = p["shequ:grid"]
        features.append({"type": "Feature", "properties": {"geocoding": {k: v for k, v in geocoding.items()
                                                                          if v is not None}},
                         "geometry": geometry})
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if fmt == "geojson":
        out["licence"] = LICENCE
    else:
        out["geocoding"] = {"version": "0.1.0", "attribution": LICENCE, "licence": "ODbL", "query": query}
    return out
