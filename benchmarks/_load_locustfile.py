"""The locust users of `benchmarks/bench_load.py` (run headless in a process of its own: locust's gevent
patches the socket module, so it never shares a process with the bench or the tests).

Reads the plan (paths, points, credentials, grid edits) from the JSON file named by ``SHEQU_LOAD_PLAN`` and
writes its own tally to ``SHEQU_LOAD_OUT`` when locust quits. Every answer is classified here, not by
locust's failure flag:

- ``ok``: 2xx / 304;
- ``busy``: 503 with ``Retry-After`` (admission control saying "come back later": not an error; the client
  honours it and sleeps ``Retry-After`` seconds, as a well-behaved client does);
- ``error``: a timeout, a reset or any transport failure (status 0), a 5xx other than a 503 with
  ``Retry-After``;
- ``refused``: any other 4xx (none is expected: a 401 / 403 / 422 / 429 here means the load broke
  something, and the bench reports it by status).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter, defaultdict
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment

PLAN: dict[str, Any] = json.loads(open(os.environ["SHEQU_LOAD_PLAN"], encoding="utf-8").read())
#: a request that has not answered after this long is a timeout (an error)
NETWORK_TIMEOUT_S = float(PLAN.get("network_timeout_s", 30.0))
THINK_S = tuple(PLAN.get("think_s", (0.0, 0.0)))

TIMES: dict[str, list[float]] = defaultdict(list)  # kind → response times (ms) of every answer
OUTCOMES: dict[str, Counter] = defaultdict(Counter)  # kind → ok / busy / error:<what> / refused:<status>
USER_NUMBERS = itertools.count()  # each user's random stream is seeded: (plan seed, user number)
WINDOW = [float("inf"), 0.0]  # wall-clock start of the first request, end of the last


def _outcome(response: Any, exception: BaseException | None) -> str:
    status = getattr(response, "status_code", 0) or 0
    if status == 0:
        return f"error:{type(exception).__name__ if exception else 'no answer'}"
    if status < 400:
        return "ok"
    if status == 503 and response.headers.get("Retry-After"):
        return "busy"
    if status >= 500:
        return f"error:{status}"
    return f"refused:{status}"


@events.request.add_listener
def _count(request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
           context: Any = None, exception: BaseException | None = None, **_kw: Any) -> None:
    OUTCOMES[name][_outcome(response, exception)] += 1
    TIMES[name].append(float(response_time))
    now = time.time()
    WINDOW[0] = min(WINDOW[0], now - response_time / 1000)
    WINDOW[1] = now


@events.quitting.add_listener
def _write(environment: Environment, **_kw: Any) -> None:
    out = {"kinds": {k: {"outcomes": dict(OUTCOMES[k]), "times_ms": TIMES[k]} for k in sorted(OUTCOMES)},
           "window_s": max(0.0, WINDOW[1] - WINDOW[0]), "users": environment.runner.user_count if environment.runner else None}
    with open(os.environ["SHEQU_LOAD_OUT"], "w", encoding="utf-8") as f:
        json.dump(out, f)


class _Client(FastHttpUser):
    abstract = True
    network_timeout = NETWORK_TIMEOUT_S
    connection_timeout = NETWORK_TIMEOUT_S
    wait_time = between(*THINK_S)
    headers: dict[str, str] = {}

    def _get(self, kind: str, path: str) -> None:
        self._after(self.client.get(path, name=kind, headers=self.headers))

    def _post(self, kind: str, path: str, body: dict) -> None:
        self._after(self.client.post(path, name=kind, json=body, headers=self.headers))

    def _after(self, response: Any) -> None:
        """Honour a 503's ``Retry-After`` (capped at 5 s) before the next request."""
        if getattr(response, "status_code", 0) == 503:
            retry = response.headers.get("Retry-After")
            if retry and retry.isdigit():
                gevent.sleep(min(int(retry), 5))


class SystemClient(_Client):
    """Another system with an API key (scopes geocode, features:read, tiles:read): the public reads."""

    weight = int(PLAN["weights"]["system"])

    def on_start(self) -> None:
        self.headers = {"X-API-Key": PLAN["api_key"]}
        self.rng = random.Random(f"{PLAN.get('seed', 0)}:{next(USER_NUMBERS)}")

    @task(35)
    def tile(self) -> None:
        self._get("tile", self.rng.choice(PLAN["tiles"]))

    @task(15)
    def features(self) -> None:
        self._get("features", self.rng.choice(PLAN["features"]))

    @task(20)
    def geocode(self) -> None:
        self._get("geocode", self.rng.choice(PLAN["geocode"]))

    @task(15)
    def reverse(self) -> None:
        lon, lat = self.rng.choice(PLAN["points"])
        self._get("reverse", f"/reverse?lon={lon:.6f}&lat={lat:.6f}")

    @task(15)
    def locate(self) -> None:
        lon, lat = self.rng.choice(PLAN["points"])
        self._get("locate", f"/grids/locate?lon={lon:.6f}&lat={lat:.6f}")


class GridManager(_Client):
    """A grid manager (网格员) signed in with a bearer token: previews edits of the community's grids, saves
    a few drafts, and looks at the map."""

    weight = int(PLAN["weights"]["grid_manager"])

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {PLAN['grid_manager_token']}"}
        self.rng = random.Random(f"{PLAN.get('seed', 0)}:{next(USER_NUMBERS)}")

    @task(6)
    def preview(self) -> None:
        ops = self.rng.choice(PLAN["edits"])
        self._post("edit preview", "/grid-edits/preview", {"community_code": PLAN["community"], "operations": ops})

    @task(1)
    def draft(self) -> None:
        ops = self.rng.choice(PLAN["edits"])
        self._post("edit draft", "/grid-edits", {"community_code": PLAN["community"], "operations": ops,
                                                 "reason": "压测草稿 load-test draft"})

    @task(3)
    def tile(self) -> None:
        self._get("tile", self.rng.choice(PLAN["grid_tiles"]))

    @task(2)
    def locate(self) -> None:
        lon, lat = self.rng.choice(PLAN["community_points"])
        self._get("locate", f"/grids/locate?lon={lon:.6f}&lat={lat:.6f}")


if int(PLAN.get("planners", 0)) > 0:  # only when the run asks for them (bench_load.py --planners N)

    class Planner(_Client):
        """A planner (规划人员) running the walking coverage of the kindergartens through the synchronous
        route: a long analysis inside the request, holding its admission slot and connection meanwhile."""

        fixed_count = int(PLAN["planners"])

        def on_start(self) -> None:
            self.headers = {"Authorization": f"Bearer {PLAN['planner_token']}"}

        @task
        def coverage(self) -> None:
            self._post("coverage (sync)", "/analysis/coverage", {"facility_type": "幼儿园", "distance": "walk"})
