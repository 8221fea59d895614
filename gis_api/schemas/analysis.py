"""Request models of the analysis router (`gis_api/routers/analysis.py`): coverage, siting, cameras."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictFloat, model_validator

from geo.errors import TooLarge
from gis_api.errors import BadRequest
from gis_api.params import CrsField, JsonInt
from siting.standards import FACILITY_TYPES

_FACILITY_KEYS = sorted({t.name for t in FACILITY_TYPES} | {t.code for t in FACILITY_TYPES})


def _known_facility_type(key: str) -> str:
    if key not in _FACILITY_KEYS:
        raise ValueError(f"未知设施类型 unknown facility type {key!r}；可选 one of：{'、'.join(_FACILITY_KEYS)}")
    return key


#: a facility type by its name or code (siting.standards.FACILITY_TYPES): the schema's enum, checked on input
FacilityTypeKey = Annotated[str, AfterValidator(_known_facility_type), Field(
    description="设施类型名称或代码，如 幼儿园 / kindergarten", json_schema_extra={"enum": _FACILITY_KEYS})]

#: the most demand + site points one inline siting request may carry
MAX_INLINE_POINTS = 200_000
#: demand × site pairs an inline request may ask to cover (checked before any distance is computed)
MAX_INLINE_PAIRS = 20_000_000


class CoverageRequest(BaseModel):
    """``POST /analysis/coverage``: households covered by a facility type."""

    facility_type: FacilityTypeKey
    distance: Literal["walk", "line"] | None = Field(None, description="默认取设施类型的距离类型（步行）")
    radius_m: StrictFloat | None = Field(None, gt=0, le=20_000, description="覆盖 GB 50180-2018 默认服务半径")
    community_code: str | None = Field(None, max_length=12)
    include_buildings: StrictBool = Field(True, description="false: only uncovered buildings in the layers")
    save: StrictBool = False
    area: dict | None = Field(None, description="绘制的范围：GeoJSON 面（WGS84），代替 community_code a drawn polygon")

    @model_validator(mode="after")
    def _one_area(self) -> CoverageRequest:
        if self.area is not None and self.community_code:
            raise ValueError("community_code 与 area 只能给一个 (give community_code or a drawn area, not both)")
        return self


class InlinePoint(BaseModel):
    """A demand point or candidate site given in the request (lon/lat in the request's ``crs``)."""

    id: str | int
    lon: StrictFloat
    lat: StrictFloat
    weight: StrictFloat = Field(1.0, ge=0)
    capacity: StrictFloat | None = Field(None, ge=0)


def points_wgs84(points: list[InlinePoint], crs: str) -> tuple[np.ndarray, np.ndarray]:
    """The points' lon/lat arrays in WGS84, each checked inside China (`CrsError`, a 422, otherwise).

    Vectorised: `geo.crs.point_to_wgs84` per point would redo the GCJ-02 iteration point by point, which is
    about 75 times slower on a large inline request.
    """
    from geo.crs import check_in_china, to_wgs84

    lon = np.array([q.lon for q in points], dtype=float)
    lat = np.array([q.lat for q in points], dtype=float)
    lon, lat = to_wgs84(lon, lat, crs)
    for x, y in zip(lon, lat, strict=True):
        check_in_china(x, y)
    return lon, lat


class SitingRequest(BaseModel):
    """``POST /analysis/siting``: on the DB (``facility_type``) or on inline ``demand`` + ``sites`` points."""

    model: Literal["lscp", "mclp", "pmedian"] = "mclp"
    # database mode
    facility_type: FacilityTypeKey | None = Field(None, description="DB mode: demand = households, sites = existing + candidates")
    new_sites: JsonInt | None = Field(None, ge=0, le=10_000)
    candidates: list[Literal["buildings", "intersections"]] = ["buildings"]
    community_code: str | None = Field(None, max_length=12)
    keep_existing: StrictBool = True
    # inline mode
    demand: list[InlinePoint] | None = Field(None, description="inline mode: lon/lat points (crs)")
    sites: list[InlinePoint] | None = None
    fixed: list[str | int] = []
    crs: CrsField = "wgs84"
    # both
    p: JsonInt | None = Field(None, ge=1)
    distance: Literal["walk", "line"] | None = None
    radius_m: StrictFloat | None = Field(None, gt=0, le=20_000)
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: StrictFloat = Field(60.0, gt=0, le=300)
    save: StrictBool = Field(False, description="DB mode: store the new sites as planned facilities (replacing the previous plan)")

    @property
    def inline(self) -> bool:
        """Whether the request carries its own points (inline mode) rather than a facility type."""
        return self.demand is not None or self.sites is not None

    def check_inline(self) -> None:
        """`BadRequest` for an inline request that cannot be solved as given (no points, no radius, no p…)."""
        if not self.demand:
            raise BadRequest("需求点为空 (empty demand)")
        if not self.sites:
            raise BadRequest("候选点为空 (no sites)")
        if len(self.demand) + len(self.sites) > MAX_INLINE_POINTS:
            raise BadRequest(f"点数超过 {MAX_INLINE_POINTS} (too many inline points)")
        pairs = len(self.demand) * len(self.sites)
        if pairs > MAX_INLINE_PAIRS:
            raise TooLarge(
                f"需求点 × 候选点 = {pairs}，超过上限 {MAX_INLINE_PAIRS} demand × sites = {pairs} pairs, over the "
                f"limit of {MAX_INLINE_PAIRS}", {"pairs": pairs, "max_pairs": MAX_INLINE_PAIRS})
        if self.radius_m is None:
            raise BadRequest("内联模式需要 radius_m (radius_m is required)")
        if self.model != "lscp" and self.p is None:
            raise BadRequest(f"{self.model} 需要 p")

    def fixed_indices(self) -> list[int]:
        """Indices into ``sites`` of the ``fixed`` ids (`BadRequest` for an id not among the sites)."""
        index = {str(q.id): k for k, q in enumerate(self.sites or [])}
        unknown = [f for f in self.fixed if str(f) not in index]
        if unknown:
            raise BadRequest(f"fixed 中的 id 不在 sites 中 (unknown fixed ids): {unknown[:10]}")
        return [index[str(f)] for f in self.fixed]

    def site_capacity(self) -> np.ndarray | None:
        """Per-site capacities (unbounded where one is missing), or ``None`` when no site has one."""
        caps = [q.capacity for q in self.sites or []]
        return None if all(c is None for c in caps) else np.array([np.inf if c is None else c for c in caps])


class CameraRequest(BaseModel):
    """``POST /analysis/cameras``: a camera plan for one community."""

    community_code: str | None = Field(None, max_length=12, description="默认第一个社区；无社区时用区的演示窗口")
    model: Literal["bullet-4mm", "bullet-6mm", "bullet-12mm", "dome-360"] = "bullet-6mm"
    headings: JsonInt = Field(8, ge=1, le=36)
    pole_spacing_m: StrictFloat = Field(30.0, ge=5, le=500)
    building_corners: StrictBool = Field(False, description="also building corners (wall mounts) as candidates")
    k: JsonInt | None = Field(None, ge=1, le=5000, description="best k new cameras (MCLP); default fewest (LSCP)")
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: StrictFloat = Field(60.0, gt=0, le=300)
