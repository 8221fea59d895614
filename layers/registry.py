"""The layer registry: every dataset the platform shows, described once, as data.

A layer says which table (and which fixed subset of it) it reads, which columns are exposed
(never the private ones: free-form ``tags`` blobs, residents' names, phone numbers…), how it is
drawn by default, at which zooms it appears and who may read it. The OGC API Features router,
the vector tile server, the web map and the folium export all serve *any* registered layer,
so a new layer is one more entry in ``LAYERS`` — no new endpoint.

Identifiers in here (table, column names, the fixed ``where`` fragment) are trusted constants
written by developers; request values never reach SQL except as bound parameters.
Layers whose table does not exist yet (another feature's migration has not run) are skipped at
run time by :func:`layers.store.available_layers`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

PROPERTY_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
GEOMETRY_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")
READ_ROLES = ("public", "staff", "admin")


@dataclass(frozen=True)
class Prop:
    """One exposed column."""

    name: str
    type: str = "string"
    title_zh: str = ""
    # SQL column if it differs from the exposed name (still a trusted identifier).
    column: str | None = None

    @property
    def col(self) -> str:
        """The SQL column behind the property."""
        return self.column or self.name


@dataclass(frozen=True)
class Style:
    """Default drawing style (Leaflet path options + a few extras)."""

    color: str = "#3388ff"
    fill_color: str | None = None
    weight: float = 1.5
    opacity: float = 1.0
    fill_opacity: float = 0.3
    radius: float = 4.0  # points, in pixels
    icon: str | None = None  # a short name; the web map draws points as circles of this colour
    label_field: str | None = None
    dash_array: str | None = None
    # Line width by the feature's ``kind`` (e.g. trunk roads wider than lanes): ((kind, weight), …).
    kind_weights: tuple[tuple[str, float], ...] = ()

    def leaflet(self) -> dict:
        """Options for Leaflet / VectorGrid path styles."""
        out = {
            "color": self.color,
            "weight": self.weight,
            "opacity": self.opacity,
            "fillColor": self.fill_color or self.color,
            "fillOpacity": self.fill_opacity,
            "radius": self.radius,
            "fill": True,
        }
        if self.dash_array:
            out["dashArray"] = self.dash_array
        return out


@dataclass(frozen=True)
class Thinning:
    """Per-zoom feature thinning for vector tiles (drop what would be invisible at that zoom).

    ``min_area_px`` / ``min_length_px``: drop polygons / lines smaller than this many tile pixels
    (256-pixel tiles) below ``full_zoom``; ``kind_column`` + ``kinds_low_zoom``: below ``full_zoom``
    only rows whose kind is in this list are kept (e.g. major roads only at city zooms).
    """

    full_zoom: int = 15
    min_area_px: float = 0.0
    min_length_px: float = 0.0
    kind_column: str | None = None
    kinds_low_zoom: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layer:
    """One registered dataset: its table (and fixed row filter), exposed properties, style, zooms, read role."""

    id: str
    title_zh: str
    title_en: str
    table: str
    geometry_type: str
    properties: tuple[Prop, ...]
    style: Style = field(default_factory=Style)
    min_zoom: int = 0
    max_zoom: int = 22
    read_role: str = "public"
    description_zh: str = ""
    id_column: str = "id"
    # A feature id made of several columns (trusted SQL over ``t``, e.g. H3 cells keyed by area,
    # resolution, mode and cell); ids are then strings and tiles carry it as the ``fid`` property.
    id_sql: str | None = None
    geom_column: str = "geom"
    # Fixed row filter (trusted constant SQL over columns of ``t``), e.g. one admin level.
    where: str | None = None
    # The row filter used instead of ``where`` when an items query gives ``datetime``: a layer of current
    # rows (``where`` holds ``valid_to IS NULL``) then answers with the versions valid at that time (the
    # web map's "as of" date). Tiles, single items and extents keep ``where``.
    as_of_where: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    thinning: Thinning = field(default_factory=Thinning)
    # Included in the multi-layer basemap tile (drawn in this order, first = bottom).
    basemap: bool = False
    # Shown when the web map opens (otherwise only listed in the layer switcher).
    web_default: bool = True
    # Position in layer lists and the web map's layer switcher (then by id).
    order: int = 100

    def __post_init__(self) -> None:
        for ident in [self.id, self.table, self.id_column, self.geom_column,
                      *(p.col for p in self.properties), *(p.name for p in self.properties)]:
            if not _IDENT.match(ident):
                raise ValueError(f"layer {self.id!r}: bad identifier {ident!r}")
        for col in (self.valid_from, self.valid_to, self.thinning.kind_column):
            if col is not None and not _IDENT.match(col):
                raise ValueError(f"layer {self.id!r}: bad identifier {col!r}")
        if self.geometry_type not in GEOMETRY_TYPES:
            raise ValueError(f"layer {self.id!r}: geometry type {self.geometry_type!r}")
        if self.read_role not in READ_ROLES:
            raise ValueError(f"layer {self.id!r}: read role {self.read_role!r}")
        for p in self.properties:
            if p.type not in PROPERTY_TYPES:
                raise ValueError(f"layer {self.id!r}: property {p.name} type {p.type!r}")
        if not (0 <= self.min_zoom <= self.max_zoom <= 24):
            raise ValueError(f"layer {self.id!r}: zoom range {self.min_zoom}..{self.max_zoom}")

    @property
    def id_expr(self) -> str:
        """SQL expression of the feature id over ``t``."""
        return self.id_sql or f"t.{self.id_column}"

    @property
    def id_is_text(self) -> bool:
        """True when feature ids are strings (a composite ``id_sql``), else integers."""
        return self.id_sql is not None

    @property
    def has_time(self) -> bool:
        """True when the layer has a valid-time column (``datetime`` filters apply)."""
        return self.valid_from is not None

    @property
    def geometry_family(self) -> str:
        """``Point``, ``LineString`` or ``Polygon`` (the geometry type without ``Multi``)."""
        return self.geometry_type.removeprefix("Multi")

    def prop(self, name: str) -> Prop | None:
        """The exposed property ``name``, or None."""
        for p in self.properties:
            if p.name == name:
                return p
        return None

    def public_dict(self) -> dict:
        """Description for the web map and ``/layers`` (no SQL identifiers)."""
        return {
            "id": self.id,
            "title": self.title_zh,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "description": self.description_zh,
            "geometry_type": self.geometry_type,
            "properties": [{"name": p.name, "type": p.type, "title": p.title_zh or p.name}
                           for p in self.properties],
            "style": {**asdict(self.style), "leaflet": self.style.leaflet()},
            "min_zoom": self.min_zoom,
            "max_zoom": self.max_zoom,
            "read_role": self.read_role,
            "basemap": self.basemap,
            "web_default": self.web_default,
            "temporal": self.has_time,
        }


def _prop(name: str, type_: str = "string", zh: str = "", column: str | None = None) -> Prop:
    """Shorthand for the registry entries below: name, type, Chinese title, column."""
    return Prop(name=name, type=type_, title_zh=zh, column=column)


_ADMIN_PROPS = (
    _prop("code", "string", "区划代码"),
    _prop("name", "string", "名称"),
    _prop("level", "string", "层级"),
    _prop("parent_code", "string", "上级代码"),
    _prop("source", "string", "来源"),
    _prop("valid_from", "datetime", "生效时间"),
    _prop("valid_to", "datetime", "失效时间"),
)

MAJOR_ROAD_KINDS = ("motorway", "trunk", "primary", "secondary", "motorway_link", "trunk_link",
                    "primary_link", "secondary_link", "tertiary")

LAYERS: tuple[Layer, ...] = (
    # ---- base layers (migration 0001_base) ----
    Layer(
        id="water", title_zh="水系", title_en="Water", table="water", geometry_type="MultiPolygon",
        properties=(_prop("osm_id", "integer", "OSM 编号"), _prop("kind", "string", "类型"), _prop("name", "string", "名称")),
        style=Style(color="#6baed6", fill_color="#9ecae1", weight=0.5, fill_opacity=0.8, label_field="name"),
        min_zoom=8, basemap=True, order=10, thinning=Thinning(full_zoom=14, min_area_px=4.0),
        description_zh="河流、水面（OpenStreetMap）",
    ),
    Layer(
        id="admin_district", title_zh="区县", title_en="Districts", table="admin_unit",
        geometry_type="MultiPolygon", properties=_ADMIN_PROPS, where="t.level = 'district' AND t.geom IS NOT NULL",
        style=Style(color="#7b3294", weight=2.5, fill_opacity=0.0, dash_array="6 4", label_field="name"),
        min_zoom=6, valid_from="valid_from", valid_to="valid_to", basemap=True, order=60,
        description_zh="区县界（GB/T 2260，高德来源，已由 GCJ-02 转为 WGS84）",
    ),
    Layer(
        id="admin_township", title_zh="街道/乡镇", title_en="Townships", table="admin_unit",
        geometry_type="MultiPolygon", properties=_ADMIN_PROPS, where="t.level = 'township' AND t.geom IS NOT NULL",
        style=Style(color="#c2a5cf", weight=2.0, fill_opacity=0.0, dash_array="4 3", label_field="name"),
        min_zoom=10, valid_from="valid_from", valid_to="valid_to", basemap=True, order=61,
        description_zh="街道（乡镇）界；演示区为由路网推导的临时边界",
    ),
    Layer(
        id="admin_community", title_zh="社区/村", title_en="Communities", table="admin_unit",
        geometry_type="MultiPolygon", properties=_ADMIN_PROPS, where="t.level = 'community' AND t.geom IS NOT NULL",
        style=Style(color="#e7298a", weight=1.5, fill_opacity=0.0, dash_array="3 3", label_field="name"),
        min_zoom=12, valid_from="valid_from", valid_to="valid_to", basemap=True, order=62,
        description_zh="社区（村）界；演示区为由路网推导的临时边界",
    ),
    Layer(
        id="building", title_zh="建筑", title_en="Buildings", table="building", geometry_type="MultiPolygon",
        properties=(
            _prop("osm_id", "integer", "OSM 编号"), _prop("name", "string", "名称"), _prop("kind", "string", "类型"),
            _prop("kind_detail", "string", "细类"), _prop("height_m", "number", "高度（米）"),
            _prop("floors", "integer", "层数"), _prop("area_m2", "number", "占地面积（平方米）"),
            _prop("households_est", "integer", "估算户数"), _prop("addr_street", "string", "街路巷"),
            _prop("addr_housenumber", "string", "门牌号"),
        ),
        style=Style(color="#b5a48a", fill_color="#d9cbb3", weight=0.6, fill_opacity=0.85, label_field="name"),
        min_zoom=13, basemap=True, order=30, thinning=Thinning(full_zoom=16, min_area_px=2.0),
        description_zh="建筑轮廓与高度（OpenStreetMap / Tilezen），户数为估算值",
    ),
    Layer(
        id="railway", title_zh="铁路与轨道", title_en="Railways", table="railway",
        geometry_type="MultiLineString",
        properties=(_prop("osm_id", "integer", "OSM 编号"), _prop("kind", "string", "类型"), _prop("name", "string", "名称")),
        style=Style(color="#636363", weight=1.5, dash_array="5 3", label_field="name"),
        min_zoom=10, basemap=True, order=40,
    ),
    Layer(
        id="road", title_zh="道路", title_en="Roads", table="road", geometry_type="LineString",
        properties=(
            _prop("osm_id", "integer", "OSM 编号"), _prop("name", "string", "路名"), _prop("name_en", "string", "英文名"),
            _prop("kind", "string", "等级"), _prop("oneway", "boolean", "单行"),
        ),
        style=Style(color="#f0a030", weight=1.2, label_field="name", kind_weights=(
            ("motorway", 4.0), ("trunk", 4.0), ("primary", 3.5), ("secondary", 2.8), ("tertiary", 2.2),
            ("motorway_link", 2.0), ("trunk_link", 2.0), ("primary_link", 2.0), ("secondary_link", 1.8),
            ("residential", 1.4), ("footway", 0.6), ("path", 0.6), ("cycleway", 0.6), ("steps", 0.6),
        )),
        min_zoom=10, basemap=True, order=50,
        thinning=Thinning(full_zoom=14, min_length_px=2.0, kind_column="kind", kinds_low_zoom=MAJOR_ROAD_KINDS),
        description_zh="可通行道路网（OpenStreetMap Overpass 提取）",
    ),
    Layer(
        id="poi", title_zh="兴趣点", title_en="Points of interest", table="poi", geometry_type="Point",
        properties=(_prop("osm_id", "integer", "OSM 编号"), _prop("kind", "string", "类型"), _prop("name", "string", "名称")),
        style=Style(color="#d7301f", radius=3, fill_opacity=0.9, icon="poi", label_field="name"),
        min_zoom=14, order=80, description_zh="兴趣点（OpenStreetMap）",
    ),
    Layer(
        id="demo_address_point", title_zh="门址点（OSM）", title_en="OSM address points",
        table="demo_address_point", geometry_type="Point",
        properties=(
            _prop("osm_id", "integer", "OSM 编号"), _prop("kind", "string", "类型"), _prop("name", "string", "名称"),
            _prop("addr_street", "string", "街路巷"), _prop("addr_housenumber", "string", "门牌号"),
        ),
        style=Style(color="#31a354", radius=3, fill_opacity=0.9, label_field="addr_housenumber"),
        min_zoom=15, order=81, web_default=False,
    ),
    # ---- standard addresses (migration 0002_addresses) ----
    Layer(
        id="standard_address", title_zh="标准地址", title_en="Standard addresses", table="standard_address",
        geometry_type="Point",
        properties=(
            _prop("code", "string", "地址编码"), _prop("full_text", "string", "标准地址"), _prop("level", "string", "层级"),
            _prop("parent_code", "string", "上级编码"), _prop("district_code", "string", "区县代码"),
            _prop("township_code", "string", "街道代码"), _prop("community_code", "string", "社区代码"),
            _prop("building_id", "integer", "建筑编号"), _prop("source", "string", "来源"), _prop("status", "string", "状态"),
            _prop("version", "integer", "版本"), _prop("valid_from", "datetime", "生效时间"),
            _prop("valid_to", "datetime", "失效时间"),
        ),
        # Current, active addresses down to building level; unit / floor / room addresses identify
        # homes and are not published on the public map.
        where="t.valid_to IS NULL AND t.status = 'active' AND t.level IN ('road', 'house_number', 'building') "
              "AND t.geom IS NOT NULL",
        style=Style(color="#08519c", fill_color="#4292c6", radius=3.5, fill_opacity=0.9, label_field="full_text"),
        min_zoom=15, order=85, valid_from="valid_from", valid_to="valid_to", web_default=False,
        description_zh="现行标准地址（街路巷、门牌、楼栋三级），含地址编码",
    ),
    Layer(
        id="standard_address_history", title_zh="标准地址（含历史）", title_en="Standard addresses with history",
        table="standard_address", geometry_type="Point",
        properties=(
            _prop("code", "string", "地址编码"), _prop("full_text", "string", "标准地址"), _prop("level", "string", "层级"),
            _prop("parent_code", "string", "上级编码"), _prop("community_code", "string", "社区代码"),
            _prop("source", "string", "来源"), _prop("status", "string", "状态"), _prop("version", "integer", "版本"),
            _prop("valid_from", "datetime", "生效时间"), _prop("valid_to", "datetime", "失效时间"),
        ),
        where="t.geom IS NOT NULL",
        style=Style(color="#6a51a3", radius=3, fill_opacity=0.7, label_field="full_text"),
        min_zoom=15, order=86, read_role="staff", web_default=False, valid_from="valid_from", valid_to="valid_to",
        description_zh="全部地址版本（含门户级与已注销地址），按 datetime 查询某一时刻的地址；仅限工作人员",
    ),
    # ---- compounds (migrations 0007_compounds, 0008_compound_layer) ----
    Layer(
        id="compound", title_zh="小区", title_en="Compounds", table="standard_address",
        geometry_type="MultiPolygon", geom_column="area",
        properties=(
            _prop("name", "string", "小区名称", column="compound_name"), _prop("code", "string", "地址编码"),
            _prop("full_text", "string", "标准地址"), _prop("district_code", "string", "区县代码"),
            _prop("township_code", "string", "街道代码"), _prop("community_code", "string", "社区代码"),
            _prop("source", "string", "来源"), _prop("version", "integer", "版本"),
            _prop("valid_from", "datetime", "生效时间"),
        ),
        # current, active compound addresses (小区 / 院落) with their polygon (standard_address.area);
        # the invalidation trigger covers `area` since migration 0008
        where="t.level = 'compound' AND t.valid_to IS NULL AND t.status = 'active' AND t.area IS NOT NULL",
        style=Style(color="#d95f0e", fill_color="#fec44f", weight=1.5, fill_opacity=0.2, label_field="name"),
        # drawn under the buildings (order 30), above the grid tint
        min_zoom=13, order=27, thinning=Thinning(full_zoom=15, min_area_px=4.0),
        description_zh="小区、院落范围（标准地址库 compound 级，含名称与地址编码）",
    ),
    # ---- grids (migration 0003_grids) ----
    Layer(
        id="street_block", title_zh="街区", title_en="Street blocks", table="street_block",
        geometry_type="MultiPolygon",
        properties=(
            _prop("community_code", "string", "社区代码"), _prop("seq", "integer", "序号"), _prop("kind", "string", "类型"),
            _prop("households", "integer", "户数"), _prop("buildings", "integer", "建筑数"),
            _prop("area_m2", "number", "面积（平方米）"),
        ),
        style=Style(color="#969696", fill_color="#d9d9d9", weight=0.8, fill_opacity=0.15),
        min_zoom=13, read_role="staff", order=20, web_default=False, description_zh="由道路围合的街区（网格划分的基本单元）",
    ),
    Layer(
        id="grid", title_zh="网格", title_en="Grids", table="grid", geometry_type="MultiPolygon",
        properties=(
            _prop("code", "string", "网格编码"), _prop("name", "string", "名称"), _prop("level", "string", "层级"),
            _prop("parent_code", "string", "上级编码"), _prop("community_code", "string", "社区代码"),
            _prop("households", "integer", "户数"), _prop("buildings", "integer", "建筑数"),
            _prop("area_m2", "number", "面积（平方米）"), _prop("compactness", "number", "紧凑度"),
            _prop("contiguous", "boolean", "连通"), _prop("version", "integer", "版本"), _prop("source", "string", "来源"),
            _prop("valid_from", "datetime", "生效时间"), _prop("valid_to", "datetime", "失效时间"),
        ),
        where="t.level = 'grid' AND t.valid_to IS NULL", as_of_where="t.level = 'grid'",
        style=Style(color="#1b9e77", fill_color="#66c2a5", weight=2.0, fill_opacity=0.12, label_field="name"),
        # drawn under the buildings (order 30): the tint marks grid areas without hiding building colours
        min_zoom=12, basemap=True, order=25, valid_from="valid_from", valid_to="valid_to",
        description_zh="社区治理网格（现行版本；带 datetime 查询时为该时刻有效的版本）",
    ),
    Layer(
        id="microgrid", title_zh="微网格", title_en="Micro-grids", table="grid", geometry_type="MultiPolygon",
        properties=(
            _prop("code", "string", "网格编码"), _prop("name", "string", "名称"), _prop("level", "string", "层级"),
            _prop("parent_code", "string", "上级网格"), _prop("community_code", "string", "社区代码"),
            _prop("households", "integer", "户数"), _prop("buildings", "integer", "建筑数"),
            _prop("area_m2", "number", "面积（平方米）"), _prop("version", "integer", "版本"),
            _prop("valid_from", "datetime", "生效时间"), _prop("valid_to", "datetime", "失效时间"),
        ),
        where="t.level = 'microgrid' AND t.valid_to IS NULL", as_of_where="t.level = 'microgrid'",
        style=Style(color="#66a61e", weight=1.0, fill_opacity=0.0, dash_array="2 2", label_field="name"),
        min_zoom=14, read_role="staff", order=64, valid_from="valid_from", valid_to="valid_to", web_default=False,
        description_zh="微网格（楼栋组，现行版本；带 datetime 查询时为该时刻有效的版本）",
    ),
    Layer(
        id="h3_cell", title_zh="H3 六边形格网", title_en="H3 cells", table="h3_cell", geometry_type="Polygon",
        properties=(
            _prop("area_code", "string", "区域代码"), _prop("res", "integer", "分辨率"), _prop("mode", "string", "覆盖方式"),
            _prop("cell", "string", "H3 编号"), _prop("households", "integer", "户数"), _prop("buildings", "integer", "建筑数"),
            _prop("pois", "integer", "兴趣点数"), _prop("addresses", "integer", "地址数"),
            _prop("computed_at", "datetime", "计算时间"),
        ),
        id_column="cell", id_sql="t.area_code || ':' || t.res || ':' || t.mode || ':' || t.cell",
        style=Style(color="#8c6bb1", fill_color="#bfd3e6", weight=0.8, fill_opacity=0.25, label_field="cell"),
        min_zoom=11, read_role="staff", order=25, web_default=False,
        description_zh="H3 六边形统计格网（户数、建筑、兴趣点、地址计数）",
    ),
    # ---- facilities and cameras (migration 0004_siting) ----
    Layer(
        id="facility", title_zh="服务设施", title_en="Facilities", table="facility", geometry_type="Point",
        properties=(
            _prop("type_code", "string", "设施类型"), _prop("name", "string", "名称"), _prop("status", "string", "状态"),
            _prop("capacity", "number", "服务能力"), _prop("source", "string", "来源"),
        ),
        where="t.status = 'existing'",
        style=Style(color="#54278f", fill_color="#9e9ac8", radius=5, fill_opacity=0.9, icon="facility",
                    label_field="name"),
        min_zoom=12, order=90, description_zh="现有社区服务设施（幼儿园、卫生站、养老等）",
    ),
    Layer(
        id="facility_planned", title_zh="规划设施（选址结果）", title_en="Planned facilities (siting results)",
        table="facility", geometry_type="Point",
        properties=(
            _prop("type_code", "string", "设施类型"), _prop("name", "string", "名称"), _prop("status", "string", "状态"),
            _prop("capacity", "number", "服务能力"), _prop("source", "string", "来源"),
        ),
        where="t.status = 'planned'",
        style=Style(color="#e6550d", fill_color="#fd8d3c", radius=6, fill_opacity=0.9, icon="star",
                    label_field="name"),
        min_zoom=12, read_role="staff", order=91, description_zh="选址分析给出的规划设施位置",
    ),
    Layer(
        id="camera", title_zh="监控摄像头", title_en="Cameras", table="camera", geometry_type="Point",
        properties=(
            _prop("name", "string", "名称"), _prop("community_code", "string", "社区代码"), _prop("model", "string", "型号"),
            _prop("heading_deg", "number", "朝向（度）"), _prop("range_m", "number", "视距（米）"),
            _prop("fov_deg", "number", "视角（度）"), _prop("status", "string", "状态"),
        ),
        style=Style(color="#252525", fill_color="#737373", radius=4, fill_opacity=0.9, icon="camera"),
        min_zoom=14, order=92, read_role="staff", description_zh="公共安全视频点位（现有与规划）；仅限工作人员",
    ),
    # ---- planner workbench (issue 13, migration 0013_analysis) ----
    Layer(
        id="coverage_gap", title_zh="服务覆盖盲区（覆盖分析）", title_en="Coverage gaps (coverage analysis)",
        table="coverage_gap", geometry_type="MultiPolygon",
        properties=(
            _prop("facility_type", "string", "设施类型"), _prop("radius_m", "number", "服务半径（米）"),
            _prop("distance", "string", "距离方式"), _prop("covered_share", "number", "覆盖率"),
            _prop("uncovered_buildings", "integer", "未覆盖建筑"), _prop("computed_at", "datetime", "计算时间"),
        ),
        style=Style(color="#c92a2a", fill_color="#e03131", weight=1.0, fill_opacity=0.3),
        min_zoom=12, order=93, read_role="staff", description_zh="最近一次覆盖分析中未被服务半径覆盖的住宅区域",
    ),
)

_BY_ID = {layer.id: layer for layer in LAYERS}
if len(_BY_ID) != len(LAYERS):  # pragma: no cover - developer error
    raise RuntimeError("duplicate layer id in registry")

BASEMAP_ID = "basemap"


def register(layer: Layer) -> Layer:
    """Add a layer at run time (e.g. an analysis result published by another package)."""
    global LAYERS
    if layer.id in _BY_ID or layer.id == BASEMAP_ID:
        raise ValueError(f"layer id {layer.id!r} already registered")
    _BY_ID[layer.id] = layer
    LAYERS = (*LAYERS, layer)
    return layer


def get(layer_id: str) -> Layer | None:
    """The registered layer ``layer_id``, or None."""
    return _BY_ID.get(layer_id)


def all_layers() -> tuple[Layer, ...]:
    """Every registered layer, by ``order`` then id."""
    return tuple(sorted(_BY_ID.values(), key=lambda layer: (layer.order, layer.id)))


def basemap_layers() -> tuple[Layer, ...]:
    """The layers of the multi-layer basemap tile, bottom first."""
    return tuple(layer for layer in all_layers() if layer.basemap)
