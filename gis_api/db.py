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


def read_database_url(settings: Settings | None = None) -> str | None:
    """The libpq URL of the read replica (``DATABASE_URL_READ``), None when there is none."""
    settings = settings or get_settings()
    return settings.database_url_read or None


def sqlalchemy_url(url: str) -> str:
    """The URL with the psycopg 3 driver SQLAlchemy should use (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache(maxsize=8)
def _engine_for(url: str, statement_timeout_ms: int, pool_timeout_s: float,
                application_name: str | None = None) -> Engine:
    # statement_timeout bounds every query; pool_timeout bounds the wait for a free connection, after
    # which the API answers 503 with Retry-After (gis_api.errors) instead of hanging
    options = f"-c statement_timeout={int(statement_timeout_ms)}" if statement_timeout_ms > 0 else ""
    connect_args: dict = {"connect_timeout": 5, "options": options}
    if application_name:  # pg_stat_activity tells these connections apart (the analysis workers', issue 15)
        connect_args["application_name"] = application_name
    return create_engine(sqlalchemy_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True,
                         pool_timeout=pool_timeout_s, connect_args=connect_args)


@lru_cache(maxsize=8)
def _lookup_engine_for(url: str, statement_timeout_ms: int, pool_timeout_s: float) -> Engine:
    # reverse geocoding sends one read-only statement per request (address_registry.store.reverse): in
    # autocommit that statement is its own snapshot, without the BEGIN and ROLLBACK round trips of a
    # transaction; psycopg prepares it after its fifth use on a connection (its default threshold: with 0
    # the pool's empty ping query was prepared anew at every checkout, a server-side statement left behind
    # each time), and the server keeps one generic plan for it. Under the default plan_cache_mode PostgreSQL kept choosing
    # custom plans for it — re-planned at every execution, 2.1 ms of backend CPU against 0.76 ms with the
    # generic plan (demo size; docs/scaling.md section 6). A generic plan cannot know LIMIT :kk and the point,
    # so its estimated cost (~300,000 at 10⁶ addresses) passed jit_above_cost and every execution was
    # JIT-compiled: 150–350 ms instead of ~1 ms; JIT is off here. Only statements written for this engine
    # run on it.
    options = f"-c statement_timeout={int(statement_timeout_ms)} " if statement_timeout_ms > 0 else ""
    options += "-c plan_cache_mode=force_generic_plan -c jit=off"
    # 10 connections, no overflow: admission lets at most `max_in_flight` (10) requests in at once, and an
    # overflow connection would be opened and closed per request (losing its prepared statement)
    return create_engine(sqlalchemy_url(url), pool_size=10, max_overflow=0, pool_pre_ping=True,
                         pool_timeout=pool_timeout_s, isolation_level="AUTOCOMMIT",
                         connect_args={"connect_timeout": 5, "options": options,
                                       "application_name": "shequ-lookup"})


def get_lookup_engine(url: str | None = None) -> Engine:
    """A cached engine for single-statement point look-ups (reverse geocoding): autocommit, a statement
    prepared after a few uses with a generic plan. Never for writes or several statements that must agree."""
    settings = get_settings()
    return _lookup_engine_for(url or database_url(settings), settings.statement_timeout_ms, settings.pool_timeout_s)


@lru_cache(maxsize=8)
def _replica_engine_for(url: str, statement_timeout_ms: int, pool_timeout_s: float) -> Engine:
    # a replica that is down must cost little: a short connect timeout, and no pre-ping retry loop (the
    # router falls back to the primary on the first failure and retries after replica_retry_s)
    options = f"-c statement_timeout={int(statement_timeout_ms)}" if statement_timeout_ms > 0 else ""
    return create_engine(sqlalchemy_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True,
                         pool_timeout=pool_timeout_s, connect_args={"connect_timeout": 2, "options": options})


def get_read_engine(url: str) -> Engine:
    """A cached engine for the read replica at ``url``."""
    settings = get_settings()
    return _replica_engine_for(url, settings.statement_timeout_ms, settings.pool_timeout_s)


def get_engine(url: str | None = None, application_name: str | None = None) -> Engine:
    """A cached engine for `url` (default: database_url()); its connections named ``application_name``."""
    settings = get_settings()
    return _engine_for(url or database_url(settings), settings.statement_timeout_ms, settings.pool_timeout_s,
                       application_name)


def postgis_version(engine: Engine) -> str:
    """The PostGIS library version of the database (raises when it cannot be reached)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
