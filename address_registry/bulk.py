"""Bulk geocoding of many address strings on Dask (`dask.distributed`), partitioned (issue 14).

A department's table of millions of address strings is cut into partitions of ``partition_size`` rows
(contiguous, so the answers come back in input order); the geocoder is sent once to every worker
(``Client.scatter(..., broadcast=True)``: each worker deserialises it once and keeps it for all its
partitions) and each partition is one task. A local cluster of worker processes by default
(``LocalCluster``), or an existing scheduler (``tcp://host:8786``); one that cannot be reached is a clear
`Unavailable` naming it (the client handling is :mod:`geo.cluster`, shared with the other province jobs). The answers equal `Geocoder.geocode_many` in one process (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from address_registry.geocoder import Geocoder
from geo.cluster import CONNECT_TIMEOUT_S, check_scheduler, dask_client, map_partitions
from geo.errors import InvalidInput

__all__ = ["CONNECT_TIMEOUT_S", "DEFAULT_PARTITION", "check_scheduler", "geocode_bulk", "geocode_partition",
           "partitions"]

DEFAULT_PARTITION = 5_000


def partitions(texts: Sequence[str], size: int) -> list[tuple[int, list[str]]]:
    """(first row index, rows) per partition of at most ``size`` rows, in order."""
    if size < 1:
        raise InvalidInput("分区大小必须为正 partition size must be positive")
    return [(i, list(texts[i : i + size])) for i in range(0, len(texts), size)]


def geocode_partition(geocoder: Geocoder, rows: list[str], limit: int = 1) -> list[list[dict[str, Any]]]:
    """The answers of one partition (a Dask task; the geocoder is the worker's scattered copy)."""
    return geocoder.geocode_many(rows, limit)


def geocode_bulk(
    geocoder: Geocoder,
    texts: Sequence[str],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    partition_size: int = DEFAULT_PARTITION,
    limit: int = 1,
    client: Any = None,
) -> list[list[dict[str, Any]]]:
    """`geocoder.geocode_many(texts, limit)` computed on Dask: a LocalCluster of ``workers`` processes, the
    scheduler at ``scheduler`` (``tcp://host:8786``), or a ``client`` the caller owns (left open)."""
    parts = partitions(texts, partition_size)
    with dask_client(scheduler, workers, client) as c:
        answers = map_partitions(c, geocode_partition, (rows for _start, rows in parts), limit, shared=geocoder)
    out: list[list[dict[str, Any]]] = []
    for part in answers:
        out.extend(part)
    return out
