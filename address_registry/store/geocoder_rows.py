"""The registry as the geocoder loads it: only the columns it reads, streamed, as compact records.

`reading.all_current` gives whole rows (history fields, related codes, every area) for the API; the
geocoder's first load at 10⁶ addresses through it held 4.3 GB and took 97.5 s (docs/scaling.md). Here the
rows come through a server-side cursor in batches (never all at once), their strings are shared (the
component keys, the few thousand distinct values such as 上海市 / 3幢 / 301室, and every parent, district,
township, community and compound code is the same object as the code it names; so are equal coordinates)
and the history fields are
left in the database. An area is read for compounds only (the geocoder's compound radius).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, cast

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.records import AddressRecord

BATCH_ROWS = 20_000

_SQL = """SELECT code, level, parent_code, district_code, township_code, community_code, compound_code,
    components::text, ST_X(geom), ST_Y(geom), building_id, source, version,
    CASE WHEN level = 'compound' AND area IS NOT NULL THEN ST_AsBinary(area) END
    FROM standard_address WHERE valid_to IS NULL AND status = 'active' ORDER BY code"""


class _EmptyExtra(dict):
    """The one empty, read-only `extra` of every lean record (the geocoder never reads it; a caller that
    copies a record with ``dict(rec.extra)`` still gets a dict of its own). A dict, so that it pickles."""

    def _read_only(self, *_args: Any, **_kwargs: Any) -> None:
        raise TypeError("a lean record has no history fields")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _read_only  # type: ignore[assignment]


_NO_EXTRA: dict[str, Any] = _EmptyExtra()
_NO_ALIASES = cast(list[str], ())


def lean_records(conn: Connection, batch_rows: int = BATCH_ROWS) -> Iterator[AddressRecord]:
    """The current active addresses in code order, streamed, as records without history fields."""
    # one object per distinct string (a dict of this load, not `sys.intern`: nothing kept after it)
    seen: dict[str, str] = {}
    same = seen.setdefault
    # … and per distinct coordinate: units, floors and rooms stand on their building's point (at 10⁶
    # addresses ~960,000 records: 46 MB of float objects)
    points: dict[float, float] = {}
    same_xy = points.setdefault
    result = conn.execute(text(_SQL), execution_options={"stream_results": True, "yield_per": batch_rows})
    loads = json.loads
    for (code, level, parent, district, township, community, compound, comps, lon, lat, building_id,
         source, version, area_wkb) in _prefetched(result.tuples().partitions(batch_rows)):
        yield AddressRecord(
            code=same(code, code),
            level=same(level, level),
            components={same(k, k): same(v, v) if type(v) is str else v for k, v in loads(comps).items()},
            lon=None if lon is None else same_xy(lon, lon),
            lat=None if lat is None else same_xy(lat, lat),
            parent_code=None if parent is None else same(parent, parent),
            district_code=None if district is None else same(district, district),
            township_code=None if township is None else same(township, township),
            community_code=None if community is None else same(community, community),
            building_id=building_id,
            compound_code=None if compound is None else same(compound, compound),
            area=shapely.from_wkb(area_wkb) if area_wkb is not None else None,
            source=same(source, source),
            status="active",
            version=version,
            aliases=_NO_ALIASES,
            extra=_NO_EXTRA,
        )


_END = object()


def _prefetched(batches: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """The rows of ``batches``, the next batch fetched by a thread while this one's rows are decoded.

    At 10⁶ addresses the server takes ~9 s to produce the rows and this process ~10 s of CPU to decode them;
    fetched in turn (a server-side cursor waits for each FETCH) they add up, fetched ahead they overlap
    (the driver releases the GIL while it waits for the server). Only the thread touches the result while
    the rows are read; an error there is raised here; closing the iterator early stops the thread."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` to the reader; False once the reader has stopped."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            item: Any = _END
        except BaseException as exc:  # handed to the reader
            item = exc
        put(item)

    worker = threading.Thread(target=fetch, name="geocoder-rows", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        worker.join()
