"""`import_city`: read and check every source of a city first, then write each layer in its own transaction.

Nothing is written until every file has been read, mapped, converted to WGS84, repaired and checked
against the declared district, so a bad file leaves the database as it was. Layers given with
``--layer kind=FILE`` replace the OSM file's records of that kind.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from onboarding import coords, store
from onboarding.errors import OnboardingError, UnknownDistrict
from onboarding.mapping import LayerMapping, load_mapping
from onboarding.osm import read_osm
from onboarding.text import check_not_garbled
from onboarding.validate import LayerReport, check_lonlat, repair, within_area
from onboarding.vector import read_file, records_for

# layer kind (CLI) → table
KIND_TABLE = {
    "road": "road",
    "building": "building",
    "poi": "poi",
    "water": "water",
    "railway": "railway",
    "address_point": "demo_address_point",
}
VECTOR_KINDS = ("road", "building", "poi", "water", "railway", "address")
OUTSIDE_CHINA_SKIPS = (
    "GB/T 2260 区划代码与边界检查 district code and boundary check (only the lon/lat range is checked)",
    "中文地址解析与标准地址库 Chinese address parsing and the standard-address registry build",
    "GCJ-02 / BD-09 偏移 GCJ-02 / BD-09 offsets (they apply inside China only)",
    "中文乱码检查 Chinese mojibake check (only U+FFFD replacement characters are refused)",
    "临时街道社区与网格 provisional townships / communities and grids (they hang off a GB/T 2260 district)",
)

ProgressFactory = Callable[[str, int], Callable[[Iterable], Iterable]]


@dataclass
class LayerSource:
    """One ``--layer kind[:crs]=FILE``."""

    kind: str
    path: Path
    crs: str | None = None


@dataclass
class ImportSpec:
    """What `shequ city import` was asked to do."""

    name: str
    district_code: str | None
    outside_china: bool = False
    osm: Path | None = None
    osm_layers: tuple[str, ...] | None = None
    layers: list[LayerSource] = field(default_factory=list)
    mapping: Path | None = None
    crs: str | None = None
    encoding: str | None = None


def parse_layer_arg(arg: str) -> LayerSource:
    """``kind=FILE`` or ``kind:crs=FILE`` (e.g. ``poi:gcj02=amap.csv``, ``building:EPSG:4528=b.shp``)."""
    head, sep, path = arg.partition("=")
    kind, _, crs = head.partition(":")
    kind = kind.strip()
    if not sep or not path or kind not in VECTOR_KINDS:
        raise OnboardingError(
            f"--layer 参数无效 bad --layer '{arg}': write kind=FILE or kind:CRS=FILE, kind one of "
            f"{', '.join(VECTOR_KINDS)}",
            code="bad_layer_argument",
        )
    return LayerSource(kind, Path(path), crs.strip() or None)


def _area(engine: Engine, spec: ImportSpec):
    if spec.outside_china:
        return None, "lon/lat range"
    if not spec.district_code:
        raise UnknownDistrict(
            "需要区划代码 give --district-code (GB/T 2260, e.g. 310101), or --outside-china for a city abroad"
        )
    with engine.connect() as conn:
        found = store.district_area(conn, spec.district_code)
    if found is None:
        raise UnknownDistrict(f"未知区划代码 unknown GB/T 2260 code {spec.district_code} (not in admin_unit)")
    name, geom = found
    if geom is None:
        raise UnknownDistrict(
            f"区划 {spec.district_code} {name} 没有边界 has no boundary to check the data against: "
            "import it first (shequ grid import) or declare its district"
        )
    return geom, f"{spec.district_code} {name}"


def _vector_layer(src: LayerSource, mapping: LayerMapping, spec: ImportSpec, prefix: int, china: bool):
    raw = read_file(src.path, mapping, spec.encoding)
    given = src.crs or mapping.crs or (spec.crs if raw.crs is None else None)
    crs = coords.choose_crs(raw.crs, given, raw.source)
    if not china and crs in coords.OFFSET_CRS:
        raise OnboardingError(
            f"境外模式不使用 {crs} the {crs.upper()} offset exists only inside China ({raw.source})",
            code="offset_crs_outside_china",
        )
    rep = LayerReport(
        src.kind, raw.source, read=len(raw.rows), notes=[f"CRS {coords.describe(crs)}", *raw.notes]
    )
    geoms, rep.repaired = repair(coords.to_wgs84(raw.geoms, crs))
    name_col = mapping.resolve(raw.columns, raw.source).get("name")
    if name_col:
        check_not_garbled([r.get(name_col) for r in raw.rows], f"{raw.source} column {name_col}", china)
    recs, rep.dropped_empty = records_for(src.kind, raw, np.asarray(geoms, dtype=object), mapping, prefix)
    return recs, rep


def read_sources(
    engine: Engine, spec: ImportSpec, osm_progress: Callable[[int], object] | None = None
) -> tuple[dict[str, tuple[list[dict], LayerReport]], str]:
    """Every layer of the city, read and checked (nothing written): table → (records, report)."""
    area, area_label = _area(engine, spec)
    china = not spec.outside_china
    maps = load_mapping(spec.mapping)
    prefix = zlib.crc32(spec.name.encode()) % (1 << 20)
    out: dict[str, tuple[list[dict], LayerReport]] = {}
    if spec.osm is not None:
        layers, osm_report = read_osm(spec.osm, osm_progress)
        wanted = spec.osm_layers or tuple(KIND_TABLE)
        unknown = [k for k in wanted if k not in KIND_TABLE]
        if unknown:
            raise OnboardingError(
                f"--osm-layers 中有未知图层 unknown layer(s) {', '.join(unknown)}: use {', '.join(KIND_TABLE)}",
                code="bad_layer_argument",
            )
        for kind in wanted:
            table = KIND_TABLE[kind]
            recs = layers.get(table, [])
            if not recs:
                continue
            rep = LayerReport(kind, Path(spec.osm).name, read=len(recs), notes=["OSM (pyosmium)"])
            if kind == "road" and osm_report["skipped"]["road_short"]:
                rep.dropped_empty = osm_report["skipped"]["road_short"]
                rep.notes.append("roads with fewer than 2 nodes inside the extract dropped")
            out[table] = (recs, rep)
    for src in spec.layers:
        if src.kind == "address":
            continue  # the standard-address import (gis_api) handles address lists
        out[KIND_TABLE[src.kind]] = _vector_layer(src, maps[src.kind], spec, prefix, china)
    for table, (recs, rep) in list(out.items()):
        check_lonlat(recs, rep.layer, rep.source)
        out[table] = (within_area(recs, area, area_label, rep), rep)
    return out, area_label


def import_city(
    engine: Engine,
    spec: ImportSpec,
    progress: ProgressFactory | None = None,
    osm_progress: Callable[[int], object] | None = None,
) -> dict:
    """Read and check every source, then replace the city's rows layer by layer; returns the report.

    `progress(desc, total)` wraps each layer's batches (a progress bar); `osm_progress(n)` is told of every
    10,000 OSM objects read."""
    layers, area_label = read_sources(engine, spec, osm_progress)
    if not layers:
        raise OnboardingError(
            "没有可导入的图层 nothing to import: give --osm and/or --layer", code="nothing_to_import"
        )
    with engine.connect() as conn:  # clashes with other cities refused before anything is written
        existing = store.city_id_of(conn, spec.name)
        for table, (recs, _rep) in layers.items():
            store.check_clash(conn, existing, table, store.unique_records(table, recs))
    with engine.begin() as conn:
        city_id = store.save_city(conn, spec.name, spec.district_code, spec.outside_china)
    reports = []
    for table, (recs, rep) in layers.items():
        wrap = progress(f"{rep.layer} {rep.source}", (len(recs) + 499) // 500) if progress else None
        rep.written = store.replace_layer(engine, city_id, table, recs, wrap)
        reports.append(rep)
    with engine.connect() as conn:
        counts = store.count_rows(conn, city_id)
    store.finish_city(engine, city_id, [r.as_dict() for r in reports], counts)
    return {
        "city_id": city_id,
        "name": spec.name,
        "area": area_label,
        "outside_china": spec.outside_china,
        "layers": reports,
        "counts": counts,
        "skipped_checks": list(OUTSIDE_CHINA_SKIPS) if spec.outside_china else [],
    }
