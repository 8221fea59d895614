"""GET /health: is the service up, and which PostGIS it talks to."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from gis_api.db import postgis_version
from gis_api.deps import db_engine

router = APIRouter(tags=["system 系统"])


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
    except Exception as exc:  # any DB failure means "unavailable", with the reason
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONResponse({"status": "unavailable", "reason": f"数据库不可用 database unavailable: {reason}"},
                            status_code=503)
    return Health(status="ok", postgis=version)
