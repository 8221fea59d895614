"""Foundation commands: db start|stop|status|url, migrate, demo load|all, serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import NoReturn

import typer

db_app = typer.Typer(help="内置 PostGIS 数据库 the embedded PostgreSQL + PostGIS cluster (ignored when DATABASE_URL is set).",
                     no_args_is_help=True)
demo_app = typer.Typer(help="演示数据 load the demo city (../shared/data) into PostGIS.", no_args_is_help=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    typer.secho(f"错误 error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _embedded():
    from gis_api.embedded_pg import from_settings
    from gis_api.settings import get_settings

    return from_settings(get_settings())


def _external_url() -> str | None:
    from gis_api.settings import get_settings

    return get_settings().database_url


@db_app.command("start")
def db_start() -> None:
    """创建（首次）并启动内置数据库 initialise (first time) and start the embedded cluster; idempotent."""
    if _external_url():
        typer.echo("DATABASE_URL is set: using the external server, the embedded cluster is not started.")
        return
    pg = _embedded()
    first = not pg.initialized()
    t0 = time.time()
    st = pg.start()  # an EmbeddedPgError is printed by the CLI (exit 1)
    typer.echo(("initialised and " if first else "") + f"started in {time.time() - t0:.1f}s: {st.message}")
    typer.echo(f"url: {pg.url()}")


@db_app.command("stop")
def db_stop() -> None:
    """停止内置数据库 stop the embedded cluster (fast shutdown); idempotent."""
    if _external_url():
        typer.echo("DATABASE_URL is set: nothing to stop here.")
        return
    st = _embedded().stop()
    typer.echo(st.message)


@db_app.command("status")
def db_status() -> None:
    """数据库状态 is the embedded cluster running? Exit code 0 when it is, 3 when not."""
    if _external_url():
        from gis_api.db import get_engine, postgis_version

        try:
            typer.echo(f"external DATABASE_URL, PostGIS {postgis_version(get_engine())}")
        except Exception as exc:
            fail(f"external database unreachable: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}", 3)
        return
    st = _embedded().status()
    typer.echo(st.message)
    if not st.running:
        raise typer.Exit(3)


@db_app.command("url")
def db_url() -> None:
    """打印数据库连接串 print the libpq URL every command uses."""
    from gis_api.db import database_url

    typer.echo(database_url())


def migrate() -> None:
    """升级数据库结构 upgrade the schema to the newest revision of every feature (alembic upgrade heads)."""
    from gis_api.db import database_url
    from gis_api.migrate import upgrade

    try:
        upgrade(database_url())
    except Exception as exc:
        fail(f"migration failed: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}")
    typer.echo("database schema is at head")


def _progress(iterable, desc, total):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="batch", file=sys.stderr, leave=False)


@demo_app.command("load")
def demo_load(
    data_dir: str | None = typer.Option(None, "--data-dir", help="shared data folder (default ../shared/data or SHEQU_SHARED_DATA_DIR)"),
) -> None:
    """载入演示城市 load admin units, roads, buildings, POIs, water, railways; idempotent, one transaction per layer."""
    from pathlib import Path

    from gis_api.db import get_engine
    from gis_api.demo import load_demo
    from gis_api.settings import get_settings

    shared = Path(data_dir) if data_dir else get_settings().shared_data_dir
    t0 = time.time()
    counts = load_demo(get_engine(), shared, progress_factory=_progress)  # DemoDataMissing: exit 1
    for c in counts:
        typer.echo(f"{c.layer:<20} {c.rows:>6}" + (f"  ({c.note})" if c.note else ""))
    typer.echo(f"demo loaded in {time.time() - t0:.1f}s")


@demo_app.command("all")
def demo_all() -> None:
    """迁移 + 载入 + 演示分析 migrate, load the demo, then run every step in gis_api.demo_steps."""
    from gis_api.demo_steps import DEMO_STEPS

    migrate()
    demo_load(None)
    for step in DEMO_STEPS:
        typer.echo(f"== shequ {' '.join(step)}")
        proc = subprocess.run([sys.executable, "-m", "gis_api.cli", *step])
        if proc.returncode != 0:
            fail(f"demo step failed: shequ {' '.join(step)} (exit {proc.returncode})")


def serve(
    host: str = typer.Option(None, help="listen address (default SHEQU_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="port (default SHEQU_PORT or 8000)"),
    reload: bool = typer.Option(False, help="reload on code changes (development)"),
    workers: int = typer.Option(None, min=1, max=64,
                                help="工作进程数 worker processes behind the one port (default SHEQU_WORKERS or 1; forked from "
                                "one parent that loaded the geocoder index, which they share; each has its own "
                                "connection pool of 10 + 10: mind max_connections)"),
) -> None:
    """启动 Web 服务 serve the API and the web map (``--workers N``: N processes on one port)."""
    import uvicorn

    from gis_api.auth.bootstrap import startup_check
    from gis_api.auth.settings import AuthSettings
    from gis_api.db import get_engine
    from gis_api.settings import get_settings

    s = get_settings()
    os.environ.setdefault("SHEQU_DATA_DIR", str(s.data_dir))
    os.environ.setdefault("SHEQU_WARM_GEOCODER", "1")  # each worker builds its index at start, not on a request
    # … or reads the one another worker (or the last start) wrote: <data_dir>/geocoder (issue 14)
    os.environ.setdefault("SHEQU_GEOCODER_SNAPSHOTS", "1")
    os.environ.setdefault("SHEQU_REVERSE_IN_MEMORY", "1")  # /reverse from the index beside the geocoder
    # the app of several workers is made in this process (gis_api/serving.py): it must read these too
    get_settings.cache_clear()
    s = get_settings()
    with get_engine().connect() as conn:
        for line in startup_check(conn, AuthSettings(), host or s.host):
            typer.echo(line)
    n = workers or s.workers
    if reload and n > 1:
        raise typer.BadParameter("--reload 只能用于单个进程 --reload runs one process: drop --workers")
    if n > 1:
        # several workers share one geocoder index (issue 14): gunicorn's arbiter binds the port, makes the
        # app and loads the index once, then forks N uvicorn workers that share its pages copy-on-write;
        # each keeps its copy up to date from the database (a write within 2 s: geocoder_cache.py), and a
        # worker that dies is replaced by a new fork (gis_api/serving.py)
        from gis_api.app import create_app
        from gis_api.serving import run

        run(create_app, host or s.host, port or s.port, n, max_requests=s.worker_max_requests)
        return
    uvicorn.run("gis_api.app:create_app", factory=True, host=host or s.host, port=port or s.port, reload=reload)


def register(app: typer.Typer) -> None:
    """Add ``db``, ``demo``, ``migrate`` and ``serve`` to the ``shequ`` command line."""
    app.add_typer(db_app, name="db")
    app.add_typer(demo_app, name="demo")
    app.command("migrate")(migrate)
    app.command("serve")(serve)
