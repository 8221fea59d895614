"""OGC API - Features - Part 3 filtering: CQL2 (text and JSON) to parameterised SQL over a layer's queryables.

pygeofilter parses the filter into its AST; this module walks it and writes a SQL condition over the
layer's table alias ``t`` in which every value is a bound parameter and every identifier comes from the
layer registry (a property name unknown to the layer's queryables is a 400, never SQL). Supported:
AND / OR / NOT, comparisons (= <> < <= > >=), LIKE, BETWEEN, IN, IS NULL, CASEI / LOWER / UPPER, the
spatial predicates S_INTERSECTS / S_DISJOINT / S_CONTAINS / S_WITHIN / S_TOUCHES / S_CROSSES /
S_OVERLAPS / S_EQUALS with geometry literals (WKT / GeoJSON / BBOX / ENVELOPE, CRS84), and DWITHIN in
metres. ``filter-lang=cql-text`` (the pre-CQL2 draft GDAL 3.6 sends) is accepted as an alias, parsed as
CQL2 text and, failing that, as ECQL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pygeofilter import ast
from pygeofilter import values as pv

from layers.ogc import CRS84, QueryError, parse_crs
from layers.registry import Layer

FILTER_LANGS = ("cql2-text", "cql2-json")
LANG_ALIASES = {"cql-text": "cql2-text", "cql2-text": "cql2-text", "cql2-json": "cql2-json", "cql-json": "cql2-json"}
MAX_FILTER_CHARS = 20_000

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]

GEOMETRY_NAMES = ("geometry", "geom")


@dataclass(frozen=True)
class SqlFilter:
    """A checked filter as a SQL condition over ``t`` and its bound parameters (names ``q0``, ``q1``…)."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the filter as given, for links and logs


def _bad(message: str) -> QueryError:
    return QueryError(f"filter 无效：{message} (invalid filter)", "filter")


def parse_cql2(value: str, lang: str = "cql2-text"):
    """The pygeofilter AST of a CQL2 filter (``lang`` cql2-text, cql2-json or the alias cql-text)."""
    import orjson
    from lark.exceptions import LarkError

    if len(value) > MAX_FILTER_CHARS:
        raise _bad(f"过长（最多 {MAX_FILTER_CHARS} 个字符）")
    try:
        if lang == "cql2-json":
            from pygeofilter.parsers.cql2_json import parse as parse_json

            try:
                return parse_json(orjson.loads(value))
            except orjson.JSONDecodeError:
                raise _bad("不是合法的 JSON") from None
        from pygeofilter.parsers.cql2_text import parse as parse_text

        try:
            return parse_text(value)
        except LarkError:
            if lang != "cql-text":
                raise
            from pygeofilter.parsers.ecql import parse as parse_ecql

            return parse_ecql(value)
    except LarkError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _bad(f"语法错误：{first}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _bad(f"无法解析：{exc}") from None


class _Translator:
    """Walks a pygeofilter AST and writes SQL; values go into ``params``."""

    def __init__(self, layer: Layer, *, singlechar: str | None = "_"):
        self.layer = layer
        self.params: dict[str, Any] = {}
        self.singlechar = singlechar
        self.handlers: dict[type, Callable[[Any], str]] = {
            ast.And: self._combination, ast.Or: self._combination, ast.Not: self._not,
            ast.Include: self._include, ast.Between: self._between, ast.Like: self._like,
            ast.In: self._in, ast.IsNull: self._is_null, ast.BBox: self._bbox,
            ast.DistanceWithin: self._dwithin, ast.DistanceBeyond: self._dwithin,
        }

    # -- values -----------------------------------------------------------------------------------
    def bind(self, value: Any) -> str:
        name = f"q{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _attribute(self, name: str) -> tuple[str, str]:
        """(SQL, type) of an attribute: a queryable property or the geometry."""
        if name in GEOMETRY_NAMES or name == self.layer.geom_column:
            return f"t.{self.layer.geom_column}", "geometry"
        prop = self.layer.prop(name)
        if prop is None:
            names = ", ".join([p.name for p in self.layer.properties] + ["geometry"])
            raise _bad(f"图层 {self.layer.id} 没有可查询属性 {name!r}；可用：{names}")
        return f"t.{prop.col}", prop.type

    def _geometry(self, value: Any) -> str:
        import shapely
        from shapely.geometry import shape

        if isinstance(value, pv.Envelope):
            x1, x2, y1, y2 = value.x1, value.x2, value.y1, value.y2
            return (f"ST_MakeEnvelope({self.bind(float(min(x1, x2)))}, {self.bind(float(min(y1, y2)))}, "
                    f"{self.bind(float(max(x1, x2)))}, {self.bind(float(max(y1, y2)))}, 4326)")
        if not isinstance(value, pv.Geometry):
            raise _bad("空间谓词需要一个几何字面量（WKT、GeoJSON 或 BBOX）")
        try:
            geom = shape(value.geometry)
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise _bad(f"几何无效：{exc}") from None
        if geom.is_empty or not geom.is_valid:
            raise _bad("几何为空或无效（例如多边形自相交、未闭合）")
        return f"ST_GeomFromText({self.bind(geom.wkt)}, 4326)"

    def _coerce(self, kind: str, value: Any) -> Any:
        """A literal converted to the compared property's type (so SQL compares like with like)."""
        try:
            if kind == "string":
                return value if isinstance(value, str) else str(value)
            if kind == "integer":
                if isinstance(value, float) and not value.is_integer():
                    return value  # 3.5 > an integer column: compare as numeric
                return int(value)
            if kind == "number":
                v = float(value)
                if not math.isfinite(v):
                    raise ValueError
                return v
            if kind == "boolean":
                if isinstance(value, bool):
                    return value
                return {"true": True, "false": False}[str(value).lower()]
            if kind == "date" and not isinstance(value, dt.date):
                return dt.date.fromisoformat(str(value))
            if kind == "datetime" and not isinstance(value, dt.datetime):
                if isinstance(value, dt.date):
                    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
                return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, TypeError, KeyError):
            raise _bad(f"值 {value!r} 不是 {kind} 类型") from None
        return value

    def scalar(self, node: Any, kind: str | None = None) -> tuple[str, str | None]:
        """(SQL, type) of a scalar expression; literals are coerced to ``kind`` when known."""
        if isinstance(node, ast.Attribute):
            return self._attribute(node.name)
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, (pv.Geometry, pv.Envelope)):
            return self._geometry(node), "geometry"
        if isinstance(node, ast.Node):
            raise _bad(f"不支持的表达式 {type(node).__name__}")
        if node is None:
            return "NULL", None
        if isinstance(node, (list, tuple, dict)) or isinstance(node, pv.Interval):
            raise _bad("此处不支持数组或时间区间")
        value = self._coerce(kind, node) if kind and kind != "geometry" else node
        return self.bind(value), kind

    def _function(self, node: ast.Function) -> tuple[str, str | None]:
        name = node.name.lower()
        if name in ("lower", "upper", "casei") and len(node.arguments) == 1:
            inner, _ = self.scalar(node.arguments[0], "string")
            fn = "upper" if name == "upper" else "lower"
            return f"{fn}(({inner})::text)", "string"
        args = node.arguments
        if name == "bbox" and len(args) in (4, 6) and all(isinstance(a, (int, float)) for a in args):
            x1, y1, x2, y2 = (args[0], args[1], args[3], args[4]) if len(args) == 6 else args
            return self._geometry(pv.Envelope(x1, x2, y1, y2)), "geometry"
        raise _bad(f"不支持的函数 {node.name}（支持 CASEI / LOWER / UPPER）")

    def _pair(self, lhs: Any, rhs: Any) -> tuple[str, str]:
        """Both sides of a comparison, a literal typed like the attribute on the other side."""
        if isinstance(lhs, (ast.Attribute, ast.Function)):
            left, kind = self.scalar(lhs)
            right, _ = self.scalar(rhs, kind)
        else:
            right, kind = self.scalar(rhs)
            left, _ = self.scalar(lhs, kind)
        if kind == "geometry":
            raise _bad("几何不能用比较运算符（请用 S_INTERSECTS 等空间谓词）")
        return left, right

    # -- predicates -------------------------------------------------------------------------------
    def sql(self, node: Any) -> str:
        """The SQL condition of a predicate node."""
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if isinstance(node, ast.Comparison):
            left, right = self._pair(node.lhs, node.rhs)
            return f"({left} {node.op.value} {right})"
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self._spatial(node)
        handler = self.handlers.get(type(node))
        if handler is None:
            if isinstance(node, ast.TemporalPredicate):
                raise _bad("暂不支持时间谓词（T_AFTER 等）；请用 datetime 参数或日期比较")
            raise _bad(f"不支持的条件 {type(node).__name__}")
        return handler(node)

    def _combination(self, node: ast.Combination) -> str:
        return f"({self.sql(node.lhs)} {node.op.value} {self.sql(node.rhs)})"

    def _not(self, node: ast.Not) -> str:
        return f"(NOT {self.sql(node.sub_node)})"

    @staticmethod
    def _include(node: ast.Include) -> str:
        return "FALSE" if node.not_ else "TRUE"

    def _between(self, node: ast.Between) -> str:
        left, kind = self.scalar(node.lhs)
        low, _ = self.scalar(node.low, kind)
        high, _ = self.scalar(node.high, kind)
        neg = "NOT " if node.not_ else ""
        return f"({left} {neg}BETWEEN {low} AND {high})"

    def _like(self, node: ast.Like) -> str:
        left, _ = self.scalar(node.lhs)
        pattern = node.pattern
        if isinstance(pattern, ast.Function) and len(pattern.arguments) == 1 and pattern.name.lower() in (
                "lower", "casei", "upper") and isinstance(pattern.arguments[0], str):
            arg = pattern.arguments[0]  # CASEI('%Abc%'): fold the literal here, the column in SQL
            pattern = arg.upper() if pattern.name.lower() == "upper" else arg.lower()
        if not isinstance(pattern, str):
            raise _bad("LIKE 的模式必须是字符串")
        single = self.singlechar or node.singlechar
        out = []
        chars = iter(pattern)
        for ch in chars:
            if ch == node.escapechar:
                nxt = next(chars, "")
                out.append("\\" + nxt if nxt in "%_\\" else nxt)
            elif ch == node.wildcard:
                out.append("%")
            elif ch == single:
                out.append("_")
            elif ch in "%_\\":
                out.append("\\" + ch)
            else:
                out.append(ch)
        op = "ILIKE" if node.nocase else "LIKE"
        neg = "NOT " if node.not_ else ""
        return f"(({left})::text {neg}{op} {self.bind(''.join(out))})"

    def _in(self, node: ast.In) -> str:
        left, kind = self.scalar(node.lhs)
        if not node.sub_nodes:
            return "TRUE" if node.not_ else "FALSE"
        items = ", ".join(self.scalar(v, kind)[0] for v in node.sub_nodes)
        neg = "NOT " if node.not_ else ""
        return f"({left} {neg}IN ({items}))"

    def _is_null(self, node: ast.IsNull) -> str:
        left, _ = self.scalar(node.lhs)
        return f"({left} IS {'NOT ' if node.not_ else ''}NULL)"

    _SPATIAL = {"INTERSECTS": "ST_Intersects", "DISJOINT": "ST_Disjoint", "CONTAINS": "ST_Contains",
                "WITHIN": "ST_Within", "TOUCHES": "ST_Touches", "CROSSES": "ST_Crosses",
                "OVERLAPS": "ST_Overlaps", "EQUALS": "ST_Equals"}

    def _spatial_args(self, lhs: Any, rhs: Any) -> tuple[str, str]:
        left, lkind = self.scalar(lhs)
        right, rkind = self.scalar(rhs)
        if lkind != "geometry" or rkind != "geometry":
            raise _bad("空间谓词的两边必须是几何（geometry 属性或几何字面量）")
        return left, right

    def _spatial(self, node: ast.SpatialComparisonPredicate) -> str:
        left, right = self._spatial_args(node.lhs, node.rhs)
        return f"{self._SPATIAL[node.op.name]}({left}, {right})"

    def _bbox(self, node: ast.BBox) -> str:
        if node.crs not in (None, "", CRS84) and parse_crs(node.crs, "filter").uri != CRS84:
            raise _bad("BBOX 只支持 CRS84 经纬度")
        env = pv.Envelope(node.minx, node.maxx, node.miny, node.maxy)
        left, right = self._spatial_args(node.lhs, env)
        return f"ST_Intersects({left}, {right})"

    def _dwithin(self, node: ast.SpatialDistancePredicate) -> str:
        left, right = self._spatial_args(node.lhs, node.rhs)
        units = (node.units or "meters").lower()
        factor = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
                  "km": 1000.0, "kilometers": 1000.0, "kilometres": 1000.0}.get(units)
        if factor is None or not math.isfinite(float(node.distance)) or node.distance < 0:
            raise _bad(f"DWITHIN 的距离需为非负的米或千米，收到 {node.distance} {node.units}")
        d = self.bind(float(node.distance) * factor)
        expr = f"ST_DWithin(({left})::geography, ({right})::geography, {d})"
        return expr if isinstance(node, ast.DistanceWithin) else f"(NOT {expr})"


def to_sql(layer: Layer, node: Any, *, singlechar: str | None = "_", text: str = "") -> SqlFilter:
    """The SQL condition of a parsed filter over ``layer`` (identifiers from the registry only)."""
    tr = _Translator(layer, singlechar=singlechar)
    return SqlFilter(tr.sql(node), tr.params, text)


def parse_filter(layer: Layer, value: str, lang: str | None = None, crs: str | None = None) -> SqlFilter:
    """Check and translate a ``filter`` / ``filter-lang`` / ``filter-crs`` triple for ``layer``."""
    given = (lang or "cql2-text").strip().lower()
    if given not in LANG_ALIASES:
        raise QueryError(f"不支持的 filter-lang={lang!r}；可用：cql2-text、cql2-json（cql-text 视同 cql2-text）",
                         "filter-lang")
    if crs not in (None, "") and parse_crs(crs, "filter-crs").uri != CRS84:
        raise QueryError("filter-crs 只支持 CRS84（经度在前）", "filter-crs")
    if not value.strip():
        raise _bad("为空")
    node = parse_cql2(value, "cql-text" if given == "cql-text" else LANG_ALIASES[given])
    # CQL2's single-character wildcard is "_"; pygeofilter's parsers report "." (its ECQL heritage)
    return to_sql(layer, node, singlechar="_", text=value)


def parse_filter_params(layer: Layer, params: dict[str, str]) -> SqlFilter | None:
    """The filter of a request's parameters by name (None when there is no ``filter``)."""
    if "filter" not in params:
        if "filter-lang" in params or "filter-crs" in params:
            raise QueryError("给了 filter-lang / filter-crs 却没有 filter", "filter")
        return None
    return parse_filter(layer, params["filter"], params.get("filter-lang"), params.get("filter-crs"))
