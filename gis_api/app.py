"""The FastAPI application factory.

Routers are discovered: every module in gis_api.routers that defines `router` is included, sorted by
module name. Long-lived state is built here, once per app, and kept on ``app.state``: the settings, the
engine, the tile cache keeper (access times, size cap), the geocoder cache, the access layer's settings and rate limiter. At shutdown the keeper writes what it has
queued and the engine is disposed.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from address_registry.geocoder_cache import open_cache
from address_registry.reverse_cache import reverse_cache_for
from gis_api import routers as routers_pkg
from gis_api.admission import AdmissionMiddleware
from gis_api.auth.deps import open_route
from gis_api.auth.ratelimit import RateLimiter, SharedRateLimiter
from gis_api.auth.settings import AuthSettings
from gis_api.db import database_url, get_engine, get_lookup_engine, get_read_engine, read_database_url
from gis_api.errors import install_handlers
from gis_api.openapi_contract import add_error_responses
from gis_api.openapi_links import add_links
from gis_api.openapi_ogc import add_ogc_paths
from gis_api.replica import ReadRouter, ReadYourWritesMiddleware
from gis_api.settings import Settings, get_settings
from gis_api.uploads import BodyLimitMiddleware
from tiles.store import CacheKeeper

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)


def discover_routers():
    """(module name, router) of every module in gis_api.routers that defines ``router``, by name."""
    found = []
    for mod in sorted(pkgutil.iter_modules(routers_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routers_pkg.__name__}.{mod.name}")
        router = getattr(module, "router", None)
        if router is not None:
            found.append((mod.name, router))
    return found


def _warm_geocoder(cache, reverse=None) -> None:
    """Build the geocoder index once (a served worker, at start-up), and the reverse index beside it when
    the app has one; a failure is logged, the first geocode then tries again."""
    try:
        cache.get()
        if reverse is not None:
            reverse.get()
    except Exception:  # the database may be down at start-up: the request path reports that properly
        log.warning("geocoder warm-up failed; the first geocode builds the index", exc_info=True)


def create_app(settings: Settings | None = None, db_url: str | None = None,
               read_db_url: str | None = None) -> FastAPI:
    """The API and web map over the database at ``db_url`` (default: the settings' database), reading
    through the replica at ``read_db_url`` (default: the settings' ``DATABASE_URL_READ``, if any)."""
    settings = settings or get_settings()
    url = db_url or database_url(settings)
    read_url = read_db_url or read_database_url(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.warm_geocoder:
            threading.Thread(target=_warm_geocoder, args=(app.state.geocoder_cache, app.state.reverse_cache),
                             name="geocoder-warm-up", daemon=True).start()
        yield
        executor = getattr(app.state, "analysis_executor", None)
        if executor is not None:  # its worker processes end; a later start of the same app makes new ones
            app.state.analysis_executor = None
            executor.close()
        app.state.tile_keeper.run(force=True)
        app.state.engine.dispose()
        app.state.lookup_engine.dispose()
        if app.state.read_router.replica is not None:
            app.state.read_router.replica.dispose()

    app = FastAPI(
        title="Shequ GIS 社区 GIS",
        version="0.1.0",
        description="智慧社区空间底座：标准地址、网格、服务设施选址与空间数据接口。 "
                    "Spatial base of a smart-community platform: standard addresses, grids, siting, spatial APIs.",
        lifespan=lifespan,
        # /docs is served below from local assets: FastAPI's default page loads Swagger UI from a CDN,
        # which an intranet cannot reach.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = get_engine(url)
    app.state.lookup_engine = get_lookup_engine(url)  # reverse geocoding's one statement (gis_api/db.py)
    app.state.read_router = ReadRouter(app.state.engine, get_read_engine(read_url) if read_url else None,
                                       retry_s=settings.replica_retry_s)
    app.state.tile_keeper = CacheKeeper.from_settings(app.state.engine, settings)
    app.state.geocoder_cache = open_cache(
        app.state.engine, snapshot_dir=settings.data_dir / "geocoder" if settings.geocoder_snapshots else None)
    # /reverse from memory (issue 14), beside the geocoder and kept current by its deltas; None: through SQL
    app.state.reverse_cache = reverse_cache_for(app.state.geocoder_cache) if settings.reverse_in_memory else None
    app.state.auth_settings = AuthSettings()
    # shared by the worker processes (issue 15: per-process buckets gave N workers N times a key's limit)
    app.state.rate_limiter = (SharedRateLimiter(app.state.engine) if settings.shared_rate_limits else RateLimiter())
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_json_bytes)
    # outermost: a request refused for lack of a slot costs nothing (issue 15, gis_api/admission.py)
    app.add_middleware(AdmissionMiddleware, max_in_flight=settings.max_in_flight, wait_s=settings.admission_wait_s,
                       max_analyses=settings.max_analyses_in_flight)
    # outside admission: a busy answer also says which worker gave it
    app.add_middleware(ReadYourWritesMiddleware)  # X-Shequ-Worker: the pid of the process answering
    for _name, router in discover_routers():
        app.include_router(router)
    STATIC_DIR.mkdir(exist_ok=True)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_error_responses(app)  # issue 15: every error status, the one error body, the security schemes
    add_ogc_paths(app)  # issue 16: the OGC spelling of the items path, for GDAL's OAPIF driver
    add_links(app)  # issue 15: links between operations (a created resource → its reads and writes)

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(open_route("API documentation page"))])
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="Shequ GIS 接口文档",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    return app
