"""GET /health: is the service up, and which PostGIS it talks to."""

import logging
from functools import lru_cache

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

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


#: /health runs in threads of its own, never queued behind the routes in FastAPI's thread pool
_HEALTH_THREADS = anyio.CapacityLimiter(2)


@lru_cache(maxsize=8)
def _unpooled(url: URL) -> Engine:
    # a connection of its own each time: a pool exhausted by the load never makes /health wait (issue 15)
    return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})


@router.get("/health", response_model=Health, response_model_exclude_none=True,
            responses={503: {"model": Health, "description": "数据库不可用 the database is down"}})
async def health(engine: Engine = Depends(db_engine)):
    """服务是否可用及 PostGIS 版本；数据库不可用时 503 并说明原因。Is the service up: 200 with the PostGIS version,
    or 503 with the reason when the database cannot be reached. Answered while the API is saturated: it uses
    neither the connection pool nor the request thread pool."""
    try:
        version = await anyio.to_thread.run_sync(postgis_version, _unpooled(engine.url), limiter=_HEALTH_THREADS)
    except Exception as exc:  # any DB failure means "unavailable"; its text goes to the log, not the caller
        log.warning("health: database unavailable: %s", str(getattr(exc, "orig", exc)).strip()[:200])
        return JSONResponse({"status": "unavailable", "reason": "数据库不可用 database unavailable"},
                            status_code=503, headers={"Retry-After": "5"})
    return Health(status="ok", postgis=version)
