"""The field mapping (YAML): which column of a city's file is the name, levels, house number …

A mapping file has one section per layer kind; each section maps our field to the file's column, and may
set ``crs`` (EPSG code, ``gcj02``, ``bd09``) and ``encoding`` for that layer's file::

    building:
      crs: EPSG:4528
      name: 建筑名称
      levels: 层数
    poi:
      crs: gcj02
      kind: 类型

A field the file names explicitly must exist (else `MappingColumnMissing`); without a mapping the first
default column present is used (OSM / ogr2ogr names first, then usual Chinese headers), and a field with
no column is left empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from onboarding.errors import BadMapping, MappingColumnMissing

KINDS = ("road", "building", "poi", "water", "railway", "address")
LAYER_OPTIONS = ("crs", "encoding")

DEFAULTS: dict[str, dict[str, tuple[str, ...]]] = {
    "road": {
        "id": ("osm_id", "id", "fid"),
        "name": ("name", "名称", "道路名称", "路名"),
        "name_en": ("name:en", "name_en"),
        "kind": ("highway", "fclass", "kind", "class", "道路等级", "等级"),
        "oneway": ("oneway", "单行"),
    },
    "building": {
        "id": ("osm_id", "id", "fid"),
        "name": ("name", "名称", "建筑名称"),
        "kind_detail": ("building", "kind_detail", "type", "用途", "类型"),
        "height": ("height", "height_m", "高度"),
        "levels": ("building:levels", "building_levels", "levels", "floors", "层数", "楼层数"),
        "area": ("area", "area_m2", "面积"),
        "addr_street": ("addr:street", "addr_street", "街路巷", "道路"),
        "addr_housenumber": ("addr:housenumber", "addr_housenumber", "门牌号", "门牌"),
    },
    "poi": {
        "id": ("osm_id", "id", "uid", "fid"),
        "name": ("name", "名称"),
        "kind": ("kind", "amenity", "type", "类型", "分类", "category"),
        "lon": ("lon", "lng", "longitude", "x", "经度"),
        "lat": ("lat", "latitude", "y", "纬度"),
    },
    "water": {
        "id": ("osm_id", "id", "fid"),
        "name": ("name", "名称"),
        "kind": ("kind", "natural", "water", "type", "类型"),
    },
    "railway": {
        "id": ("osm_id", "id", "fid"),
        "name": ("name", "名称"),
        "kind": ("railway", "kind", "type", "类型"),
    },
    "address": {},
}


@dataclass
class LayerMapping:
    """The mapping of one layer kind: explicit columns, defaults, and the layer's crs / encoding."""

    kind: str
    explicit: dict[str, str] = field(default_factory=dict)
    crs: str | None = None
    encoding: str | None = None

    def resolve(self, columns: list[str], source: str) -> dict[str, str | None]:
        """Our field → the file's column (None when absent); an explicit column that is missing raises."""
        present = set(columns)
        lower = {c.lower(): c for c in columns}
        out: dict[str, str | None] = {}
        for fld, candidates in DEFAULTS[self.kind].items():
            if fld in self.explicit:
                col = self.explicit[fld]
                if col not in present:
                    raise MappingColumnMissing(
                        f"映射文件中的列不存在 the mapping names column '{col}' for {self.kind}.{fld}, "
                        f"but {source} has no such column (columns: {', '.join(columns) or 'none'})"
                    )
                out[fld] = col
                continue
            out[fld] = next((lower[c.lower()] for c in candidates if c.lower() in lower), None)
        return out


def _layer(kind: str, section: object, path: Path) -> LayerMapping:
    if kind not in DEFAULTS:
        raise BadMapping(f"映射文件中有未知图层 unknown layer '{kind}' in {path} (known: {', '.join(KINDS)})")
    if section is None:
        return LayerMapping(kind)
    if not isinstance(section, dict):
        raise BadMapping(f"映射文件格式错误 {path}: section '{kind}' must map field names to columns")
    lm = LayerMapping(kind)
    for key, value in section.items():
        if key in LAYER_OPTIONS:
            setattr(lm, key, None if value is None else str(value))
        elif key in DEFAULTS[kind]:
            lm.explicit[key] = str(value)
        else:
            raise BadMapping(
                f"映射文件中有未知字段 unknown field '{kind}.{key}' in {path} "
                f"(known: {', '.join([*DEFAULTS[kind], *LAYER_OPTIONS])})"
            )
    return lm


def load_mapping(path: Path | None) -> dict[str, LayerMapping]:
    """The mapping of every layer kind (defaults where the file says nothing; no file: all defaults)."""
    out = {kind: LayerMapping(kind) for kind in KINDS}
    if path is None:
        return out
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadMapping(f"映射文件无法读取 cannot read mapping file {path}: {exc}") from exc
    if doc is None:
        return out
    if not isinstance(doc, dict):
        raise BadMapping(f"映射文件格式错误 {path}: expected one section per layer (road, building, poi …)")
    for kind, section in doc.items():
        out[str(kind)] = _layer(str(kind), section, Path(path))
    return out
