"""Long analyses out of the request (issue 15): the planner routes wait for a worker process, holding nothing.

The synchronous analysis routes (``POST /analysis/coverage``, ``/isochrones``, ``/siting``, ``/cameras``,
``/coverage/report.{fmt}``, ``/scenarios``) used to run their seconds of CPU in the API worker's thread pool,
on a pooled connection, inside one of its admission slots — taking from the cheap requests (tiles, features,
geocode) the threads, connections, slots and CPU they need (`docs/benchmarks.md`, "Load (issue 15)").

Now each API process has an :class:`AnalysisExecutor`: ``SHEQU_ANALYSIS_WORKERS`` (1) spawned processes, at
a lower CPU priority (``SHEQU_ANALYSIS_NICE``, 5), each with its own engine (application name
``shequ-analysis``, never the API's pool). An async route validates the request, checks the caller's rights,
gives back its general admission slot (`gis_api.admission.release_slot`) and awaits the worker's answer: no
thread, no pooled connection and no general slot is held while the analysis runs. The worker runs the
analysis (`gis_api.analysis_tasks`) in one transaction and sends back the finished answer — status, body
bytes (JSON encoded there, byte for byte as the route encoded it), media type, headers — so the API process
does no more than copy bytes. Domain and database errors become the error table's answer in the worker.

The public API is unchanged: the same status codes and bodies as before. How many analyses one API process
admits at once (running or waiting for its worker) is ``SHEQU_MAX_ANALYSES_IN_FLIGHT``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError

from geo.errors import ShequError, Unavailable
from gis_api.jobs import NICE, worker_init

log = logging.getLogger(__name__)

#: analysis worker processes per API process
WORKERS = max(1, int(os.environ.get("SHEQU_ANALYSIS_WORKERS", "1")))
#: the application name of the workers' database connections (``pg_stat_activity.application_name``)
APPLICATION_NAME = "shequ-analysis"


@dataclass(frozen=True)
class Outcome:
    """A finished answer, built in the worker: what the route sends."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    write_lsn: str | None = None


def json_bytes(content: Any) -> bytes:
    """``content`` encoded as FastAPI encodes a route's return value (``jsonable_encoder`` + JSONResponse)."""
    from fastapi.encoders import jsonable_encoder

    return json.dumps(jsonable_encoder(content), ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


def _error(status: int, code: str, message: str, detail: Any = None) -> Outcome:
    from gis_api.errors import _headers, error_body

    return Outcome(status, json_bytes(error_body(code, message, detail)), headers=_headers(status, detail) or {})


def run_analysis(url: str, name: str, args: tuple, note_lsn: bool = False) -> Outcome:
    """Worker-process entry: run the analysis ``name`` on a connection of this process, in one transaction;
    the answer (an error answer for a domain or database error)."""
    from gis_api.analysis_tasks import TASKS, Answer
    from gis_api.db import get_engine
    from gis_api.errors import database_error, status_and_code
    from gis_api.replica import write_lsn

    engine = get_engine(url, application_name=APPLICATION_NAME)
    lsn = None
    try:
        with engine.connect() as conn:
            with conn.begin():
                result = TASKS[name](conn, *args)
            if note_lsn:
                try:
                    lsn = write_lsn(conn)
                except DBAPIError:  # committed already: without the position the client may read stale, no error
                    pass
    except ShequError as exc:
        status, code = status_and_code(exc)
        return _error(status, code, exc.message or str(exc), exc.detail)
    except DBAPIError as exc:
        status, code, message = database_error(exc)
        log.warning("database error in analysis %s: %s", name, str(getattr(exc, "orig", exc)).strip()[:300])
        return _error(status, code, message)
    except Exception as exc:  # a bug: the caller gets the error body, the worker's log the traceback
        log.exception("analysis %s failed", name)
        return _error(500, "internal_error", f"内部错误 internal error ({type(exc).__name__})")
    if isinstance(result, Answer):
        body = result.body if result.body is not None else json_bytes(result.content)
        return Outcome(result.status, body, result.media_type, dict(result.headers), lsn)
    return Outcome(200, json_bytes(result), write_lsn=lsn)


def _warm() -> int:
    """Loaded in each new worker ahead of the first request: the analysis code and its libraries."""
    import gis_api.analysis_tasks  # noqa: F401
    import siting.service  # noqa: F401

    return os.getpid()


class AnalysisExecutor:
    """The analysis worker processes of one API process."""

    def __init__(self, url: str, workers: int = WORKERS, nice: int = NICE):
        self.url = url
        self.workers = workers
        self.nice = nice
        self._guard = threading.Lock()
        self.waiting = 0  # analyses handed to the workers whose callers are waiting (queued or running)
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=worker_init,
                                   initargs=(os.getpid(), self.nice))
        for _ in range(self.workers):
            pool.submit(_warm)
        return pool

    async def run(self, name: str, *args: Any, note_lsn: bool = False) -> Outcome:
        """Run the analysis in a worker and wait for its answer without holding a thread or a connection."""
        with self._guard:
            pool = self.pool
            try:
                fut = pool.submit(run_analysis, self.url, name, args, note_lsn)
            except BrokenProcessPool:
                pool = self.pool = self._new_pool()
                fut = pool.submit(run_analysis, self.url, name, args, note_lsn)
        self.waiting += 1  # only the event loop's thread counts: no lock needed
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:  # the client went away: a queued analysis never starts
            fut.cancel()
            raise
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory): a fresh pool for the next
            with self._guard:
                if self.pool is pool:
                    self.pool = self._new_pool()
            pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("分析进程异常退出，请重试 the analysis worker process died: retry",
                              detail={"retry_after_s": 2}) from exc
        finally:
            self.waiting -= 1

    def close(self) -> None:
        """Stop the workers (an analysis running finishes in its process; its caller is gone)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


_EXECUTOR_LOCK = threading.Lock()


def executor_of(app: Any) -> AnalysisExecutor:
    """The app's analysis executor, made on first use."""
    with _EXECUTOR_LOCK:
        ex = getattr(app.state, "analysis_executor", None)
        if ex is None:
            ex = app.state.analysis_executor = AnalysisExecutor(app.state.engine.url.render_as_string(
                hide_password=False))
        return ex


async def answer(request: Any, name: str, *args: Any) -> Any:
    """The route's response: the analysis run in a worker, after giving back the request's general slot."""
    from fastapi.responses import Response

    from gis_api.admission import release_slot

    release_slot(request.scope)
    note_lsn = request.app.state.read_router.replica is not None
    out = await executor_of(request.app).run(name, *args, note_lsn=note_lsn)
    if out.write_lsn:
        request.state.write_lsn = out.write_lsn
    return Response(out.body, status_code=out.status, media_type=out.media_type, headers=out.headers)
