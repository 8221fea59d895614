"""Analysis jobs: long analyses run in a pool of worker processes, outside the API's thread pool.

A job is a row of ``analysis_job`` (migration ``0013_analysis``): kind, validated parameters, state
(queued → running → done | failed | cancelled), progress, a message, the result. :class:`JobRunner`
(one per app, made on first use) inserts the row, then hands the id to a ``ProcessPoolExecutor`` (spawned
processes: the API's threads and DB connections are not forked). The worker (:func:`run_job`) claims the
row, runs :func:`siting.tasks.run` in one transaction, and stores the result only if the job is still
running — a cancel in the meantime rolls the whole transaction back (nothing half-saved).

Cancel is cooperative: a queued job never starts; a running one stops at its next progress report (a
solver already inside HiGHS finishes its own time limit first, and its result is dropped).

Restarts: each runner holds a PostgreSQL advisory lock (its ``runner_key``) on a connection of its own
for as long as it lives. A queued or running job whose runner's lock is free belongs to a runner that is
gone: it is marked failed when a runner starts, and whenever the job is read.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing as mp
import os
import secrets
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from geo.errors import ShequError
from siting.errors import JobNotDone, JobNotFound

log = logging.getLogger(__name__)

#: worker processes per API process (``SHEQU_JOB_WORKERS``)
WORKERS = max(1, int(os.environ.get("SHEQU_JOB_WORKERS", "2")))
ACTIVE = ("queued", "running")
INTERRUPTED = "服务重启，任务中断 interrupted: the server restarted while the job was running"
LOST = "数据库中断，任务失败 failed: the database went away while the job was running"
COLUMNS = ("id, kind, params, state, progress, message, created_by, created_at, started_at, finished_at")


class JobCancelled(Exception):
    """Raised inside a worker when its job was cancelled (stops the task, rolls its transaction back)."""


def _fail(engine: Engine, job_id: int, message: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE analysis_job SET state = 'failed', message = :m, finished_at = now() "
                              "WHERE id = :id AND state IN ('queued', 'running')"), {"id": job_id, "m": message[:2000]})
    except DBAPIError:  # the database is gone too: the next runner start fails the job (its lock is free)
        log.warning("analysis job %s: could not record its failure (%s)", job_id, message)


def run_job(url: str, job_id: int) -> str:
    """Worker-process entry: claim the job, run it, store the result (or the failure). Returns the state."""
    from gis_api.db import get_engine
    from siting import tasks

    engine = get_engine(url)
    with engine.begin() as conn:
        row = conn.execute(text("UPDATE analysis_job SET state = 'running', started_at = now(), progress = 0.01 "
                                "WHERE id = :id AND state = 'queued' RETURNING kind, params"), {"id": job_id}).first()
    if row is None:
        return "cancelled"

    def progress(fraction: float, message: str | None = None) -> None:
        with engine.begin() as c:
            alive = c.execute(text(
                "UPDATE analysis_job SET progress = GREATEST(progress, LEAST(:p, 0.99)), "
                "message = coalesce(:m, message) WHERE id = :id AND state = 'running' RETURNING id"),
                {"id": job_id, "p": float(fraction), "m": message}).first()
        if alive is None:
            raise JobCancelled

    try:
        with engine.begin() as conn:
            result = tasks.run(row.kind, conn, dict(row.params), progress)
            done = conn.execute(text(
                "UPDATE analysis_job SET state = 'done', progress = 1, result = CAST(:r AS jsonb), "
                "message = '完成 done', finished_at = now() WHERE id = :id AND state = 'running' RETURNING id"),
                {"id": job_id, "r": json.dumps(result, ensure_ascii=False, default=str)}).first()
            if done is None:
                raise JobCancelled  # cancelled while finishing: roll back everything the task wrote
        return "done"
    except JobCancelled:
        return "cancelled"
    except ShequError as exc:
        _fail(engine, job_id, exc.message)
    except Exception as exc:  # a bug: the job fails with its type, the log has the traceback
        log.exception("analysis job %s failed", job_id)
        _fail(engine, job_id, f"内部错误 internal error ({type(exc).__name__})")
    return "failed"


def exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """Worker-process initializer: a daemon thread ends the worker once its API process is gone (issue 15:
    after a ``kill -9`` of the API its workers waited forever on their queue, each holding its memory and
    database connections). A job it was running rolls back; the job itself is marked failed by the next
    runner (its runner's liveness lock is free)."""

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


#: niceness of the job and analysis worker processes (``SHEQU_ANALYSIS_NICE``, 0–19): when both want the
#: CPU, the API's processes serving cheap requests get it first (issue 15)
NICE = min(19, max(0, int(os.environ.get("SHEQU_ANALYSIS_NICE", "5"))))


def worker_init(parent_pid: int, nice: int = NICE) -> None:
    """Job / analysis worker start: a lower CPU priority, and an exit when the API process is gone."""
    if nice:
        try:
            os.nice(nice)
        except OSError:  # not allowed here: run at the API's priority
            pass
    exit_with_parent(parent_pid)


def _unpooled(engine: Engine) -> Engine:
    """An engine on the same database whose connections are not taken from (nor counted in) the API's pool."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(engine.url, poolclass=NullPool, connect_args={"connect_timeout": 5})


class JobRunner:
    """Queues jobs of one API process into its worker pool; reads, cancels and recovers them."""

    def __init__(self, engine: Engine, workers: int = WORKERS):
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=False)
        self.key = secrets.randbits(62)
        self._lock_conn: Connection | None = None  # held for the runner's life: its advisory lock says it is alive
        # outside the API's pool: a connection held for the runner's life must not cost a request one (issue 15)
        self._lock_engine = _unpooled(engine)
        self._lock_guard = threading.Lock()  # the API's threads share the runner: one user of the connection at once
        self._ensure_lock()
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                        initializer=worker_init, initargs=(os.getpid(), NICE))
        self._futures: dict[int, Future] = {}
        self.recovered = self.fail_orphans()

    def _ensure_lock(self) -> None:
        """Hold the runner's liveness lock, taking it again on a new connection when the database restarted
        (issue 15: after a crash of PostgreSQL the lock was gone, so other processes took this runner's new
        jobs for orphans)."""
        with self._lock_guard:
            if self._lock_conn is not None:
                try:
                    self._lock_conn.execute(text("SELECT 1"))
                    self._lock_conn.commit()
                    return
                except DBAPIError:
                    self._lock_conn.invalidate()
                    self._lock_conn.close()
            self._lock_conn = self._lock_engine.connect()
            self._lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
            self._lock_conn.commit()

    def close(self) -> None:
        """Stop the pool (running jobs finish) and release the liveness lock."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock_guard:
            if self._lock_conn is not None:
                self._lock_conn.close()
        self._lock_engine.dispose()

    def fail_orphans(self, job_id: int | None = None) -> int:
        """Mark failed the queued / running jobs (all, or ``job_id``) whose runner is gone, and this runner's
        own whose worker has ended without saying so (it lost the database: a crash of PostgreSQL); how many."""
        self._ensure_lock()
        with self.engine.begin() as conn:
            rows = conn.execute(text(
                "SELECT id, runner_key FROM analysis_job WHERE state IN ('queued', 'running') "
                "AND (CAST(:id AS bigint) IS NULL OR id = :id)"), {"id": job_id}).all()
            lost = [i for i, k in rows if k == self.key and i not in self._futures]
            keys = {k for _i, k in rows if k != self.key}
            # a free lock (we can take it for this transaction) = a runner that is no longer there
            dead = [k for k in keys if k is None or conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": k}).scalar_one()]
            n = conn.execute(text(
                "UPDATE analysis_job SET state = 'failed', message = :m, finished_at = now() "
                "WHERE id = ANY(:ids) AND state IN ('queued', 'running')"), {"m": LOST, "ids": lost}).rowcount
            if not dead:
                return n
            return n + conn.execute(text(
                "UPDATE analysis_job SET state = 'failed', message = :m, finished_at = now() "
                "WHERE state IN ('queued', 'running') AND (runner_key = ANY(CAST(:keys AS bigint[])) "
                "OR (runner_key IS NULL AND :null)) AND (CAST(:id AS bigint) IS NULL OR id = :id)"),
                {"m": INTERRUPTED, "keys": [k for k in dead if k is not None], "null": None in dead,
                 "id": job_id}).rowcount

    def submit(self, kind: str, params: dict, actor: str) -> int:
        """Queue a job (its row committed first); returns its id."""
        self._ensure_lock()
        with self.engine.begin() as conn:
            job_id = conn.execute(text(
                "INSERT INTO analysis_job (kind, params, created_by, runner_key) "
                "VALUES (:k, CAST(:p AS jsonb), :u, :r) RETURNING id"),
                {"k": kind, "p": json.dumps(params, ensure_ascii=False, default=str), "u": actor, "r": self.key}
            ).scalar_one()
        try:
            fut = self.pool.submit(run_job, self.url, job_id)
        except Exception as exc:  # a broken pool: the job fails at once rather than waiting forever
            _fail(self.engine, job_id, f"无法启动任务 cannot start the job ({type(exc).__name__})")
            return job_id
        self._futures[job_id] = fut
        fut.add_done_callback(functools.partial(self._done, job_id))
        return job_id

    def busy(self, job_id: int) -> bool:
        """Whether this runner's pool still holds the job (queued or in a worker, even after a cancel)."""
        return job_id in self._futures

    def _done(self, job_id: int, fut: Future) -> None:
        self._futures.pop(job_id, None)
        if not fut.cancelled() and fut.exception() is not None:  # the worker process died (killed, out of memory)
            _fail(self.engine, job_id, f"工作进程异常退出 the worker process died ({type(fut.exception()).__name__})")

    def cancel(self, conn: Connection, job_id: int, actor: str | None) -> dict:
        """Cancel a queued or running job (``actor`` None: any owner); the job's status after it."""
        job = get_job(conn, job_id, actor)
        if job["state"] not in ACTIVE:
            raise JobNotDone(f"任务已结束（{job['state']}），无法取消 the job has already ended ({job['state']})")
        hit = conn.execute(text("UPDATE analysis_job SET state = 'cancelled', message = '已取消 cancelled', "
                                "finished_at = now() WHERE id = :id AND state IN ('queued', 'running')"),
                           {"id": job_id}).rowcount
        if not hit:  # it ended while we looked
            state = get_job(conn, job_id, actor)["state"]
            raise JobNotDone(f"任务已结束（{state}），无法取消 the job has already ended ({state})")
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.cancel()  # a queued job leaves the pool's queue; a running one stops at its next progress report
        return get_job(conn, job_id, actor)


    def delete(self, conn: Connection, job_id: int, actor: str | None) -> None:
        """Remove a job and its result (``actor`` None: any owner); a queued or running one is cancelled first,
        so its worker stops at its next progress report and keeps nothing (its updates find no row)."""
        job = get_job(conn, job_id, actor)
        if job["state"] in ACTIVE:
            conn.execute(text("UPDATE analysis_job SET state = 'cancelled', finished_at = now() "
                              "WHERE id = :id AND state IN ('queued', 'running')"), {"id": job_id})
            fut = self._futures.get(job_id)
            if fut is not None:
                fut.cancel()
        conn.execute(text("DELETE FROM analysis_job WHERE id = :id"), {"id": job_id})

def get_job(conn: Connection, job_id: int, actor: str | None, result: bool = False) -> dict[str, Any]:
    """A job's status (and its result when ``result``), the caller's own unless ``actor`` is None."""
    row = conn.execute(text(f"SELECT {COLUMNS}{', result' if result else ''} FROM analysis_job "
                            "WHERE id = :id AND (CAST(:u AS text) IS NULL OR created_by = :u)"),
                       {"id": job_id, "u": actor}).mappings().first()
    if row is None:
        raise JobNotFound(f"没有编号为 {job_id} 的分析任务 no analysis job {job_id}")
    return dict(row)


def job_result(conn: Connection, job_id: int, actor: str | None) -> dict:
    """The result of a finished job; ``JobNotDone`` (409) for a queued, running, cancelled or failed one."""
    job = get_job(conn, job_id, actor, result=True)
    state = job["state"]
    if state == "done":
        return job["result"]
    if state == "failed":
        raise JobNotDone(f"任务失败，没有结果 the job failed: {job['message']}", detail={"state": state})
    if state == "cancelled":
        raise JobNotDone("任务已取消，没有结果 the job was cancelled: no result", detail={"state": state})
    raise JobNotDone(f"任务尚未完成（{state}，{job['progress']:.0%}）the job has not finished yet",
                     detail={"state": state, "progress": job["progress"]})


_RUNNER_LOCK = threading.Lock()


def runner_of(app: Any) -> JobRunner:
    """The app's job runner, made on first use (which also fails the jobs a previous run left running)."""
    with _RUNNER_LOCK:
        runner = getattr(app.state, "job_runner", None)
        if runner is None:
            runner = app.state.job_runner = JobRunner(app.state.engine)
        return runner
