"""Several API workers behind one port sharing one geocoder index (issue 14): a preloading, forking server.

``shequ serve --workers N`` (N ≥ 2) runs gunicorn's arbiter with uvicorn's worker class
(``uvicorn_worker.UvicornWorker``). The arbiter binds the port first; then, before it forks any worker
(gunicorn's ``when_ready`` hook), this process builds the app once and loads its geocoder — from the signed
snapshot of ``<data_dir>/geocoder`` when there is a valid one, else by a build through PostGIS — closes its
database connections and freezes the collector (`gc.freeze`: the index leaves the collector's reach, so no
collection in a worker writes to its objects' pages). The workers are then forked: each starts with the
parent's index in pages shared copy-on-write, and keeps it up to date itself from the registry's stamp and
deltas as before (``address_registry/geocoder_cache.py``): a write unshares only the pages it touches. What
unshares besides is the reference counts of the objects a geocode reads (CPython writes them on every
use); ``benchmarks/bench_shared_index.py`` measures how much (docs/scaling.md, "One index shared by the
workers").

A worker that dies (or, with ``SHEQU_WORKER_MAX_REQUESTS``, has served that many requests) is replaced by a new
fork of the arbiter, which still holds the index: before the fork the
arbiter brings its own copy up to date by the delta since its load (``GeocoderCache.catch_up``; never a whole
rebuild in the arbiter), so the new worker shares it and has little to apply. Connections are never
inherited: the arbiter closes its pool before every fork and each worker drops what it got
(`Engine.dispose(close=False)`). ``--reload`` and a single worker keep uvicorn's own server (one process).

A worker that stops (replaced after its requests, or on a graceful stop) first stops accepting, then gives
the connections it has just accepted a moment to deliver their request before it closes the idle ones
(`DrainingUvicornWorker`): uvicorn closes a connection with no request read yet at once, and a client that
had connected to that worker in the last instant got its connection reset (gunicorn issue 2567) — seen as a
rare failure of the replica test that recycles workers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

log = logging.getLogger(__name__)

WORKER_CLASS = "gis_api.serving.DrainingUvicornWorker"
#: at most this long a stopping worker waits for the request of a connection it accepted but has not read from
DRAIN_S = 1.0


class DrainingServer(Server):
    """uvicorn's server, stopping without resetting the connections it accepted in its last instant."""

    async def shutdown(self, sockets: Any = None) -> None:
        """Stop accepting (the other workers take the port's queue), wait up to ``DRAIN_S`` for every
        connection with no request read yet to deliver one (it is then answered before the worker exits), and
        only then shut down as uvicorn does — which closes the connections that are still idle."""
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_S
        while loop.time() < deadline and any(getattr(c, "cycle", None) is None
                                             for c in self.server_state.connections):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)


class DrainingUvicornWorker(UvicornWorker):
    """uvicorn's gunicorn worker over `DrainingServer`."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class PreforkServer(BaseApplication):
    """Gunicorn's arbiter over the app made by ``factory`` once, in the arbiter, before the workers fork."""

    def __init__(self, factory: Any, host: str, port: int, workers: int, options: dict[str, Any] | None = None,
                 max_requests: int = 0):
        self.factory = factory
        self.options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": WORKER_CLASS,
            # the app is made in `when_ready`: after the port is bound (a request meanwhile waits in the
            # listen queue instead of being refused) and before the first fork
            "preload_app": False,
            "when_ready": _when_ready,
            "pre_fork": _pre_fork,
            "post_fork": _post_fork,
            "keepalive": 5,  # uvicorn's own default, as `shequ serve` had before
            "timeout": 120,  # a worker silent this long is killed and replaced
            "graceful_timeout": 30,
            "accesslog": "-",
            "errorlog": "-",
            # gunicorn 23+ opens a control socket in ~/.gunicorn by default: one per user, shared by every
            # server of that user; not used here
            "control_socket_disable": True,
            # a worker replaced after ~max_requests (0: never) is a new fork: it shares the whole index again
            "max_requests": max_requests,
            "max_requests_jitter": max_requests // 10,
            **(options or {}),
        }
        self.initial_workers = workers
        self.app_object: Any = None
        super().__init__()

    def load_config(self) -> None:
        """Gunicorn's settings from ``options`` (no config file, no command line of its own)."""
        assert self.cfg is not None
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The app, made (and its geocoder loaded) on the first call: in the arbiter, by `_when_ready`."""
        if self.app_object is None:
            self.app_object = preload_app(self.factory)
        return self.app_object


def preload_app(factory: Any) -> Any:
    """Make the app and load its geocoder in this process, then leave nothing a fork must not inherit: no
    open connection, the collector frozen over everything alive (the index included). A geocoder that cannot
    be loaded now (the database down) is logged; each worker then loads its own when it starts."""
    from address_registry.geocoder_snapshot import freeze_shared

    app = factory()
    cache = app.state.geocoder_cache
    try:
        cache.get()
        reverse = getattr(app.state, "reverse_cache", None)
        if reverse is not None:  # the in-memory reverse index, shared copy-on-write like the geocoder
            reverse.get()
    except Exception:
        log.warning("geocoder not loaded before the fork; each worker loads its own", exc_info=True)
    _close_connections(app, close=True)
    freeze_shared()
    return app


def _close_connections(app: Any, close: bool) -> None:
    """Drop the pooled connections of the app's engines (``close=False`` in a forked child: leave the
    parent's sockets alone, just forget them — SQLAlchemy's rule for engines crossing a fork)."""
    engines = [app.state.engine, app.state.lookup_engine]
    replica = app.state.read_router.replica
    if replica is not None:
        engines.append(replica)
    for engine in engines:
        engine.dispose(close=close)


def _when_ready(server: Any) -> None:
    app = server.app.wsgi()  # PreforkServer.load: the app and its geocoder, once, before the first fork
    loaded = app.state.geocoder_cache.last_load
    if loaded.get("kind"):
        server.log.info("geocoder loaded before the workers fork: %s", loaded)


def _pre_fork(server: Any, worker: Any) -> None:
    """Before a *replacement* worker is forked, bring the arbiter's index up to date by a delta, so the new
    worker shares it and starts current (the first workers fork right after the load: nothing to do)."""
    app = server.app.app_object
    if app is None or worker.age <= server.app.initial_workers:
        return
    from address_registry.geocoder_snapshot import freeze_shared

    try:
        caught_up = app.state.geocoder_cache.catch_up()
        server.log.info("arbiter's geocoder before forking worker %s: %s", worker.age,
                        "up to date" if caught_up else "left as loaded (the new worker catches up itself)")
    except Exception:
        log.warning("arbiter's geocoder not brought up to date before a fork", exc_info=True)
    finally:
        _close_connections(app, close=True)
        freeze_shared()


def _post_fork(server: Any, worker: Any) -> None:
    app = server.app.app_object
    if app is None:
        return
    _close_connections(app, close=False)
    # the arbiter's snapshot writer (if its load built the index) is the arbiter's child, not this one's
    app.state.geocoder_cache.snapshot_writer = None


def run(factory: Any, host: str, port: int, workers: int, max_requests: int = 0) -> None:
    """Serve ``factory()``'s app on ``host:port`` with ``workers`` forked processes sharing its index (each
    replaced by a new fork after about ``max_requests`` requests; 0: never)."""
    PreforkServer(factory, host, port, workers, max_requests=max_requests).run()


# -- measuring what is shared ----------------------------------------------------------------------------

def process_memory(pid: int) -> dict[str, int]:
    """A process's memory in kB from ``/proc/<pid>/smaps_rollup``: ``rss``, ``pss`` (each shared page
    divided among the processes sharing it), ``uss`` (pages of this process only: private clean + dirty),
    ``shared`` (rss − uss), ``anon`` (anonymous memory: the heap, where the index lives — not the libraries'
    files, which every process maps shared anyway) and ``pss_anon`` (its proportional share), ``swap``."""
    fields: dict[str, int] = {}
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "uss": uss,
            "shared": fields.get("Rss", 0) - uss, "anon": fields.get("Anonymous", 0),
            "pss_anon": fields.get("Pss_Anon", 0), "swap": fields.get("Swap", 0)}


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s live child processes (``/proc/<pid>/task/*/children``), sorted."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(found)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


__all__ = ["PreforkServer", "children_of", "is_alive", "preload_app", "process_memory", "run"]
