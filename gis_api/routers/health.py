"""GET /health: is the service up, and which PostGIS it talks to."""

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from gis_api.auth.deps import open_route
from gis_api.db import postgis_version
from gis_api.deps import db_engine

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(open_route("health check for monitoring"))], tags=["system 系统"])


class Health(BaseModel):
    """Service state: ``ok`` with the PostGIS version, or ``unavailable`` with the reason."""

    status: str
    postgis: str | None = None
    reason: str | None = None


@router.get("/health", response_model=Health, response_model_exclude_none=True,
            responses={503: {"model": Health, "description": "数据库不可用 the database is down"}})
def health(engine: Engine = Depends(db_engine)):
    """服务是否可用及 PostGIS 版本；数据库不可用时 503 并说明原因。Is the service up: 200 with the PostGIS version,
    or 503 with the reason when the database cannot be reached."""
    try:
        version = postgis_version(engine)
    except Exception as exc:  # any DB failure means "unavailable"; its text goes to the log, not the caller
        log.warning("health: database unavailable: %s", str(getattr(exc, "orig", exc)).strip()[:200])
        return JSONResponse({"status": "unavailable", "reason": "数据库不可用 database unavailable"},
                            status_code=503, headers={"Retry-After": "5"})
    return Health(status="ok", postgis=version)
