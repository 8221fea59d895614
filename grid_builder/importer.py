"""`shequ grid import`: a city's own township/community boundaries (GeoJSON / GPKG / SHP with codes).

Reading and checking are separate from writing: ``read_boundaries`` returns records plus the problems
found (bad codes, empty or repaired geometry); ``import_boundaries`` writes all records in one
transaction or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry.base import BaseGeometry

from grid_builder.errors import ImportProblem
from grid_builder.geom import clean_polygonal

LEVEL_BY_LEN = {9: "township", 12: "community"}


@dataclass
class BoundaryRecord:
    """One township / community of a boundary file, checked and in lon/lat."""

    code: str
    name: str
    level: str
    parent_code: str
    geom: BaseGeometry  # lon/lat MultiPolygon
    flags: list[str] = field(default_factory=list)


def read_boundaries(
    path: str | Path,
    code_field: str = "code",
    name_field: str = "name",
    parent_field: str | None = None,
    crs: str = "wgs84",
    layer: str | None = None,
) -> tuple[list[BoundaryRecord], list[str]]:
    """Records and human-readable problems. Raises ImportProblem when the file cannot be used at all."""
    import geopandas as gpd

    from geo.crs import geometry_to_wgs84, normalize_crs

    path = Path(path)
    if not path.exists():
        raise ImportProblem(f"文件不存在 (file not found): {path}")
    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several driver-specific errors
        raise ImportProblem(f"无法读取 {path.name}（支持 GeoJSON/GPKG/SHP）: {exc}") from exc
    for f in (code_field, name_field, parent_field):
        if f and f not in gdf.columns:
            raise ImportProblem(f"缺少字段 {f!r} (missing column); 现有字段 columns: {list(gdf.columns)}")
    try:
        crs_name = normalize_crs(crs)
    except ValueError as exc:
        raise ImportProblem(str(exc)) from exc
    if gdf.crs is not None and crs_name != "gcj02" and gdf.crs.to_epsg() not in (4326, 4490):
        gdf = gdf.to_crs(4326)
    records: list[BoundaryRecord] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, row in gdf.iterrows():
        code = str(row[code_field]).strip()
        if code.endswith(".0"):
            code = code[:-2]
        name = str(row[name_field]).strip() if row[name_field] is not None else ""
        if not code.isdigit() or len(code) not in LEVEL_BY_LEN:
            problems.append(f"第 {i + 1} 行编码 {code!r} 无效：街道 9 位、社区 12 位 (bad code)")
            continue
        if code in seen:
            problems.append(f"编码 {code} 重复 (duplicate code), 已跳过第 {i + 1} 行")
            continue
        geom = row.geometry
        if geom is None or geom.is_empty:
            problems.append(f"{code} {name}: 几何为空 (empty geometry), 已跳过")
            continue
        if crs_name != "wgs84":
            geom = geometry_to_wgs84(geom, crs_name)
        geom, repaired = clean_polygonal(geom)
        if geom.is_empty:
            problems.append(f"{code} {name}: 不是面 (not a polygon), 已跳过")
            continue
        flags = ["boundary_repaired"] if repaired else []
        if repaired:
            problems.append(f"{code} {name}: 边界无效（自相交等）已自动修复 (invalid boundary repaired)")
        level = LEVEL_BY_LEN[len(code)]
        parent = (
            str(row[parent_field]).strip()
            if parent_field
            else code[: len(code) - 3 if level == "community" else 6]
        )
        seen.add(code)
        records.append(BoundaryRecord(code, name or code, level, parent, geom, flags))
    return records, problems


RETIRE_MIN_SHARE = 0.5  # a provisional unit at least half covered by imported units of its level is retired


def import_boundaries(
    engine,
    records: list[BoundaryRecord],
    dry_run: bool = False,
    by: str = "shequ grid import",
    source_name: str | None = None,
    min_share: float = RETIRE_MIN_SHARE,
) -> dict:
    """Write all records (source 'import') in one transaction; parents must exist or come in the file.

    In the same transaction, every active provisional unit of the same level whose area is covered to at
    least ``min_share`` by the active imported units of that level is retired: ``valid_to`` closed, the
    row kept, ``properties.retired = {at, by, reason, covered_share, replaced_by}``; the current grids of
    a retired community get the flag ``needs_rebuild`` (they stay until a replacing community is built).
    Provisional units below the share stay active and are reported as ``partial`` (their overlap shows in
    ``shequ grid validate``). ``dry_run`` does all of it and rolls back."""
    from sqlalchemy import text

    from grid_builder import store

    if not records:
        raise ImportProblem("没有可导入的边界 (nothing to import)")
    if not 0 < min_share <= 1:
        raise ImportProblem(f"覆盖比例须在 (0, 1] 之间 (got {min_share})")
    codes = {r.code for r in records}
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            missing = []
            for r in records:
                if r.parent_code in codes:
                    continue
                ok = conn.execute(
                    text("SELECT 1 FROM admin_unit WHERE code = :c AND valid_to IS NULL"),
                    {"c": r.parent_code},
                ).first()
                if ok is None:
                    missing.append(f"{r.code} 的上级 {r.parent_code}")
            if missing:
                raise ImportProblem(
                    "上级区划不存在或已撤销 (parent not found or retired): " + "; ".join(missing[:10])
                )
            for r in sorted(records, key=lambda x: len(x.code)):
                store.upsert_admin_unit(
                    conn, r.code, r.name, r.level, r.parent_code, r.geom, "import", {"flags": r.flags}
                )
            retired, partial = [], []
            reason = (
                "被导入的正式边界覆盖"
                + (f"（{source_name}）" if source_name else "")
                + " (replaced by imported boundaries)"
            )
            for level in ("township", "community"):
                cov = store.provisional_coverage(conn, level)
                gone = [c for c in cov if c["share"] >= min_share]
                partial += [c for c in cov if c["share"] < min_share]
                store.retire_admin_units(conn, gone, by, reason)
                retired += gone
            comm = [u["code"] for u in retired if u["level"] == "community"]
            grids = store.current_grid_counts(conn, comm) if comm else {}
            for u in retired:
                u["grids_needing_rebuild"] = grids.get(u["code"], 0)
            outside = store.buildings_outside_active_communities(conn, comm) if comm else 0
            to_build = store.communities_needing_build(conn)
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()
    return {
        "townships": sum(r.level == "township" for r in records),
        "communities": sum(r.level == "community" for r in records),
        "retired": retired,
        "partial": partial,
        "grids_needing_rebuild": sum(grids.values()),
        "buildings_outside": int(outside),
        "to_build": to_build,
        "dry_run": dry_run,
        "min_share": min_share,
    }
