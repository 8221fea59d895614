"""Request models of the planner workbench: analysis jobs, isochrones, named siting scenarios."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat, model_validator

from gis_api.params import CrsField, JsonInt
from gis_api.schemas.analysis import CoverageRequest, FacilityTypeKey


class IsochroneRequest(BaseModel):
    """``POST /analysis/isochrones``: walking isochrones of the existing facilities of a type."""

    facility_type: FacilityTypeKey
    # the service's own rule (0 < minutes <= 60), declared: the contract's long run sent 1e300 and -5, which
    # the schema allowed and the service refused only after loading the road network
    minutes: list[Annotated[StrictFloat, Field(gt=0, le=60)]] = Field(
        [5, 10, 15], min_length=1, max_length=6, description="步行分钟数 minutes of walking (0 < 分钟 ≤ 60)")
    speed_m_per_min: StrictFloat | None = Field(None, gt=0, le=300, description="步行速度，默认 75 米/分钟（4.5 km/h）")
    buffer_m: StrictFloat = Field(50.0, gt=0, le=500, description="路网缓冲距离 network buffer, metres")
    community_code: str | None = Field(None, max_length=12)


class JobSitingParams(BaseModel):
    """Siting on the DB data, as a job (nothing is saved: save a named scenario instead)."""

    facility_type: FacilityTypeKey
    model: Literal["lscp", "mclp", "pmedian"] = "mclp"
    new_sites: JsonInt | None = Field(None, ge=0, le=10_000)
    p: JsonInt | None = Field(None, ge=1)
    candidates: list[Literal["buildings", "intersections"]] = ["buildings"]
    community_code: str | None = Field(None, max_length=12)
    keep_existing: StrictBool = True
    distance: Literal["walk", "line"] | None = None
    radius_m: StrictFloat | None = Field(None, gt=0, le=20_000)
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: StrictFloat = Field(60.0, gt=0, le=600)


class ScenarioRequest(BaseModel):
    """``POST /analysis/scenarios``: solve and save a named siting scenario (the next version of its name)."""

    name: str = Field(..., min_length=1, max_length=100, description="方案名称 scenario name")
    area_code: str | None = Field(None, max_length=12, description="方案范围（行政区划代码）；空 = 全市")
    facility_type: FacilityTypeKey
    model: Literal["lscp", "mclp", "pmedian"] = "mclp"
    new_sites: JsonInt | None = Field(None, ge=0, le=10_000, description="新增设施数（mclp / pmedian）")
    p: JsonInt | None = Field(None, ge=1)
    candidates: list[Literal["buildings", "intersections", "points"]] = Field(["buildings"], min_length=1)
    points: list[tuple[StrictFloat, StrictFloat]] | None = Field(None, max_length=5000, description="候选点 [lon, lat]（crs）")
    points_csv: str | None = Field(None, max_length=1_000_000, description="候选点 CSV：id,lon,lat（crs）")
    crs: CrsField = "wgs84"
    keep_existing: StrictBool = True
    distance: Literal["walk", "line"] | None = None
    radius_m: StrictFloat | None = Field(None, gt=0, le=20_000)
    cost_per_site: StrictFloat | None = Field(None, ge=0, description="每处新增设施成本（万元），用于比较")
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: StrictFloat = Field(60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _points_only_with_points(self) -> ScenarioRequest:
        given = bool(self.points) or bool(self.points_csv)
        if "points" in self.candidates and not given:
            raise ValueError("candidates 含 points 时需要 points 或 points_csv (points or points_csv required)")
        if given and "points" not in self.candidates:
            raise ValueError("给出了候选点但 candidates 不含 points (add 'points' to candidates)")
        return self


class CoverageJob(BaseModel):
    """A coverage analysis as a job."""

    kind: Literal["coverage"]
    params: CoverageRequest


class SitingJob(BaseModel):
    """A siting run as a job."""

    kind: Literal["siting"]
    params: JobSitingParams


class IsochroneJob(BaseModel):
    """Isochrones as a job."""

    kind: Literal["isochrones"]
    params: IsochroneRequest


class ScenarioJob(BaseModel):
    """A named scenario solved and saved as a job."""

    kind: Literal["scenario"]
    params: ScenarioRequest


JobRequest = Annotated[CoverageJob | SitingJob | IsochroneJob | ScenarioJob, Field(discriminator="kind")]
