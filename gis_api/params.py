"""Request parsing shared by the routers: the ``crs`` parameter and coordinates given in it; bounded
paging and row-id parameters (issue 15: an unbounded integer reached PostgreSQL and overflowed into a 500).

Every route that takes ``crs=`` declares it with `CrsQuery` (a query parameter) or `CrsField` (a body
field); both normalise the name (wgs84 | cgcs2000 | gcj02, EPSG codes and OGC URIs accepted) and answer
422 for an unknown one. Points are converted with `geo.crs.point_to_wgs84` or the `WgsPoint` dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator, BeforeValidator, Field

from geo.crs import CRS_ALIASES, normalize_crs, point_to_wgs84
from geo.errors import StaleVersion

#: the deepest ``offset`` a list accepts: far past any page a client walks, far inside PostgreSQL's bigint
MAX_OFFSET = 100_000
#: the largest row id a path or query parameter takes: PostgreSQL's ``integer`` (serial) range
MAX_ROW_ID = 2**31 - 1

#: ``offset: OffsetQuery = 0``: rows to skip, 0…MAX_OFFSET (beyond: 422, declared in the schema)
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"跳过的条数 rows to skip (≤ {MAX_OFFSET})")]
#: ``job_id: RowIdPath``: a serial row id in the path, 1…MAX_ROW_ID (others cannot exist: 422)
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="编号 row id")]


def row_id_query(description: str, alias: str | None = None):
    """A required serial row id in the query string, 1…MAX_ROW_ID."""
    return Query(..., alias=alias, ge=1, le=MAX_ROW_ID, description=description)


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _date_time_text(value: object) -> object:
    # pydantic reads a bare number as Unix time; the schema says RFC 3339 date-time, so a number is a 422
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("应为 ISO 8601 / RFC 3339 时间，如 2026-01-31T08:00:00+08:00 expected an RFC 3339 date-time")
    return value


#: a date-time parameter as the schema declares it (``format: date-time``): numbers are refused
IsoDatetime = Annotated[datetime, BeforeValidator(_date_time_text)]


CRS_HELP = "坐标系 wgs84 | cgcs2000 (EPSG:4490) | gcj02；默认 wgs84"



def _crs_spellings() -> list[str]:
    """The CRS names the schema lists (matching is case-insensitive; these are the usual spellings)."""
    names = set()
    for key in CRS_ALIASES:
        names.add(key)
        if key.startswith("http"):
            names.add(key.replace("/ogc/", "/OGC/").replace("/epsg/", "/EPSG/").replace("crs84", "CRS84"))
        else:
            names.add(key.upper())
    return sorted(names)


#: every accepted CRS spelling, the schema's enum of ``crs`` (issue 15: "any string" was refused); the
#: empty string means the default, wgs84
CRS_NAMES = ["", *_crs_spellings()]


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("应为整数 expected an integer, not a boolean")
    return value


#: an integer in a JSON body as JSON Schema reads one: 3 and 3.0, never ``true`` (pydantic's lax int took
#: booleans; its strict int refused 3.0, which the schema allows)
JsonInt = Annotated[int, BeforeValidator(_no_bool)]

#: a CRS name in a request body, normalised ("EPSG:4490" → "cgcs2000"); unknown names are a 422
CrsField = Annotated[str, AfterValidator(normalize_crs),
                     Field(description=CRS_HELP, json_schema_extra={"enum": CRS_NAMES})]


async def crs_query(crs: str = Query("wgs84", description=CRS_HELP, json_schema_extra={"enum": CRS_NAMES})) -> str:
    """The ``crs`` query parameter, normalised (422 for an unknown name)."""
    return normalize_crs(crs)


#: a dependency-typed ``crs`` query parameter: ``crs: CrsQuery``
CrsQuery = Annotated[str, Depends(crs_query)]


@dataclass(frozen=True)
class WgsPoint:
    """A point from ``lon``/``lat``/``crs`` query parameters, converted to WGS84 and checked inside China."""

    lon: float
    lat: float
    crs: str


def wgs_point(
    lon: float = Query(..., description="经度 longitude (in crs)"),
    lat: float = Query(..., description="纬度 latitude (in crs)"),
    crs: CrsQuery = "wgs84",
) -> WgsPoint:
    """Dependency: the query's point in WGS84 (422 when malformed or outside China)."""
    wlon, wlat = point_to_wgs84(lon, lat, crs)
    assert wlon is not None and wlat is not None
    return WgsPoint(wlon, wlat, crs)


def if_match(request: Request) -> str | None:
    """Dependency: the ``If-Match`` header's entity tag without quotes or ``W/`` (None when absent)."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    tag = raw.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"') or None


def check_etag(current: str, expected: str | None) -> None:
    """412 when the caller edited another version than the current one (``expected`` None: not checked)."""
    if expected is not None and expected != "*" and expected != current:
        raise StaleVersion(
            f"记录已被他人修改（当前版本 {current}，请求基于 {expected}），请刷新后重试 the record changed since you "
            f"read it (current version {current}, yours {expected}): reload and try again",
            {"current": current, "yours": expected}, code="stale_version")
