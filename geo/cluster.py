"""The Dask cluster every province batch job runs on (issue 14): one place for the client handling.

A job gets a `dask.distributed.Client` from :func:`dask_client`: a ``LocalCluster`` of ``workers`` worker
processes (one thread each: the work is pure Python / numpy / GEOS and holds the GIL) by default, an existing
scheduler when ``scheduler`` is given (``tcp://host:8786``), or the caller's own client, left open. A scheduler
that cannot be reached within :data:`CONNECT_TIMEOUT_S` is `Unavailable` naming it (503 / CLI exit 1).

:func:`map_partitions` runs one pure function over a list of partitions of plain data, one task per
partition, and returns the answers in partition order. Each partition is scattered before its task is
submitted (the data goes to a worker once, not inside the task graph through the scheduler), and partitions
are handed over as the caller's iterator yields them, so a reader can stream partitions from PostGIS while the
workers compute. No home-made scheduler: placement, retries and memory limits are Dask's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from geo.errors import InvalidInput, Unavailable

CONNECT_TIMEOUT_S = 5.0
#: who reads a partition from PostGIS: the driver (and scatters it) or the worker computing it
READERS = ("driver", "worker")


def worker_engine() -> Any:
    """The database of a worker that reads its own partition: ``DATABASE_URL`` of the worker's own
    environment (a LocalCluster's workers inherit the driver's; `shequ province` sets it for the embedded
    cluster), one engine per worker process. No credentials travel in the task graph."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise Unavailable("Dask 工作进程没有 DATABASE_URL (the Dask worker has no DATABASE_URL in its environment)")
    return _engine(url)


@lru_cache(maxsize=4)
def _engine(url: str) -> Any:
    from sqlalchemy import create_engine

    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):  # psycopg 3, as gis_api.db
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def connect(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    """(client, cluster or None): the scheduler at ``scheduler``, else a new LocalCluster of ``workers``
    processes. Unavailable (naming the scheduler) when it cannot be reached."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), None
        except (OSError, TimeoutError) as exc:
            raise Unavailable(
                f"无法连接 Dask 调度器 {scheduler} (cannot reach the Dask scheduler {scheduler}: {exc})"
            ) from exc
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def check_scheduler(scheduler: str) -> None:
    """Connect to the scheduler and leave (Unavailable, naming it, when it cannot be reached): lets a
    command fail before it loads anything."""
    client, _ = connect(scheduler, 0)
    client.close()


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, client: Any = None) -> Iterator[Any]:
    """A client for one job: ``client`` when given (left open), else one this block owns and closes (with
    its LocalCluster)."""
    if client is not None:
        yield client
        return
    own, cluster = connect(scheduler, workers)
    try:
        yield own
    finally:
        own.close()
        if cluster is not None:
            cluster.close()


def map_partitions(client: Any, fn: Callable[..., Any], parts: Iterable[Any], *args: Any,
                   shared: Any = None) -> list[Any]:
    """``[fn(part, *args) for part in parts]`` on the cluster (``fn(shared, part, *args)`` when ``shared`` is
    given: it is broadcast to every worker once), in partition order."""
    futures = []
    # hash=False: a scattered object's key is then random, not a token of its contents — tokenising a 10⁵-
    # address geocoder took 18.6 s of the driver's CPU (pickling it 5.3 s), more than geocoding 20,000 rows
    head = [client.scatter(shared, broadcast=True, hash=False)] if shared is not None else []
    for part in parts:
        [data] = client.scatter([part], hash=False)
        futures.append(client.submit(fn, *head, data, *args, pure=False))
    try:
        return list(client.gather(futures))
    except BaseException:
        client.cancel(futures)  # one task failed: the job fails, the tasks not yet run are not started
        raise


def check_reader(reader: str) -> None:
    """InvalidInput unless ``reader`` is one of READERS."""
    if reader not in READERS:
        raise InvalidInput(f"读取方式须为 {'/'.join(READERS)} (reader must be one of {READERS}), got {reader!r}")


def run_partitions(fn: Any, parts: Iterable[Any], *args: Any, workers: int = 2, scheduler: str | None = None,
                   client: Any = None, shared: Any = None) -> list[Any]:
    """``[fn(p, *args) for p in parts]`` (``fn(shared, p, *args)`` when ``shared`` is given): on Dask (a
    LocalCluster of ``workers`` processes, ``scheduler`` or ``client``), or in this process when ``workers`` is
    0 and no scheduler or client is given."""
    if workers == 0 and scheduler is None and client is None:
        head = [shared] if shared is not None else []
        return [fn(*head, p, *args) for p in parts]
    with dask_client(scheduler, workers, client) as c:
        return map_partitions(c, fn, parts, *args, shared=shared)
