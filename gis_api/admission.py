"""Admission control (issue 15): at most ``max_in_flight`` requests are served at once; the next ones wait
``wait_s`` for a slot and then get 503 with ``Retry-After`` — a fast, honest "busy" instead of a hang.

Why: routes are sync (FastAPI runs them and their ``db_conn`` dependency in a 40-thread pool) and each
holds a pooled connection (10 + 10 overflow) for the whole request. With more requests than connections,
threads sat waiting ``pool_timeout_s`` for a connection while the thread pool queued everything behind
them, ``/health`` included: at 200 clients every client timed out and ``/health`` stayed unanswered for
about 50 s after the load stopped. With admission sized to the pool, an admitted request finds a
connection, the thread pool never fills, and the excess is refused in ``wait_s``. ``/health`` and static
files are never queued.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from gis_api.errors import BUSY, RETRY_AFTER_S, error_body

#: paths (prefixes) served without admission: monitoring and static assets touch no pooled connection
EXEMPT_PREFIXES = ("/health", "/static/")
#: the long analyses (seconds of CPU): besides a general slot, each takes one of ``max_analyses`` analysis
#: slots for its whole life. They run in an analysis worker process (`gis_api.offload`): once the route has
#: checked the request it gives its general slot back (`release_slot`) and waits holding only the analysis
#: slot, so waiting analyses never take the slots, threads or pooled connections of cheap requests. The jobs
#: route is not among them (a job is queued at once).
ANALYSIS_PATHS = ("/analysis/coverage", "/analysis/isochrones", "/analysis/siting", "/analysis/cameras",
                  "/analysis/scenarios")
#: the scope key of a request's general slot (a `_Slot`), for `release_slot`
SLOT_KEY = "shequ.admission_slot"


class _Slot:
    """A request's general slot, given back once: by the route that no longer needs it, or at the end."""

    def __init__(self, slots: anyio.Semaphore):
        self._slots: anyio.Semaphore | None = slots

    def release(self) -> None:
        if self._slots is not None:
            slots, self._slots = self._slots, None
            slots.release()


def release_slot(scope: Any) -> None:
    """Give back the request's general slot now (a route about to wait on work done elsewhere: it holds no
    thread and no pooled connection meanwhile). No-op without admission or when already given back."""
    slot = scope.get(SLOT_KEY)
    if slot is not None:
        slot.release()


class AdmissionMiddleware:
    """Pure ASGI middleware: a semaphore of ``max_in_flight`` slots around every HTTP request but the exempt."""

    def __init__(self, app: Any, max_in_flight: int, wait_s: float, max_analyses: int | None = None):
        self.app = app
        self.max_in_flight = max_in_flight
        # may exceed max_in_flight: an analysis gives its general slot back while it waits for its worker
        self.max_analyses = max_in_flight if max_analyses is None else max_analyses
        self.wait_s = wait_s
        self._slots: anyio.Semaphore | None = None  # made on first use, inside the server's event loop
        self._analysis_slots: anyio.Semaphore | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the request in a slot, or answer 503 busy when none frees up within ``wait_s``."""
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self.max_in_flight)
            self._analysis_slots = anyio.Semaphore(self.max_analyses)
        slots = self._slots
        analysis = self._analysis_slots if _is_analysis(scope) else None
        with anyio.move_on_after(self.wait_s) as waited:  # one deadline for both slots
            if analysis is not None:
                await analysis.acquire()
            try:
                await slots.acquire()
            except BaseException:
                if analysis is not None:
                    analysis.release()
                raise
        if waited.cancelled_caught:
            await _busy(send)
            return
        slot = scope[SLOT_KEY] = _Slot(slots)
        try:
            await self.app(scope, receive, send)
        finally:
            slot.release()
            if analysis is not None:
                analysis.release()


def _is_analysis(scope: Any) -> bool:
    """A long analysis: POST to one of `ANALYSIS_PATHS` (reading saved scenarios is not)."""
    return scope.get("method") == "POST" and scope["path"].startswith(ANALYSIS_PATHS)


async def _busy(send: Any) -> None:
    body = json.dumps(error_body("busy", BUSY), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(RETRY_AFTER_S).encode())]})
    await send({"type": "http.response.body", "body": body})
