"""Database URL and engine: DATABASE_URL when set, otherwise the embedded cluster."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from gis_api.settings import Settings, get_settings


def database_url(settings: Settings | None = None) -> str:
    """A libpq URL (postgresql://…) of the database every command uses."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from gis_api.embedded_pg import from_settings

    return from_settings(settings).url()


def sqlalchemy_url(url: str) -> str:
    """The URL with the psycopg 3 driver SQLAlchemy should use (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})


def get_engine(url: str | None = None) -> Engine:
    """A cached engine for `url` (default: database_url())."""
    return _engine_for(url or database_url())


def postgis_version(engine: Engine) -> str:
    """The PostGIS library version of the database (raises when it cannot be reached)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
