"""Every route declares who may call it, and the declaration holds: a matrix generated from the app's own
route table (so routes added later join it), each route × each role.

- A route with no declared policy (`requires(action)` or `open_route(reason)`) fails the first test.
- A route using the database connection must commit before the response (``scope="function"``).
- For each role the policy denies, the route answers 401 (anonymous) or 403 before doing any work.
- For each role it allows, the route does not answer 401/403 (safe methods are called; unsafe ones are
  only checked for the absence of a denial with an empty body, which fails validation before any write).
"""

from __future__ import annotations

import re

from gis_api.auth import roles as r
from gis_api.auth.deps import api_routes, route_policy
from gis_api.deps import db_conn

ROLES = ("public", *r.USER_ROLES, r.SYSTEM, "system_geocode")
#: sample values for path parameters: enough to reach the policy check (which comes first)
SAMPLES = {"collection_id": "building", "tms": "WebMercatorQuad", "z": "14", "x": "13721", "y": "6694",
           "cell": "8a309a60146ffff", "feature_id": "1",
           # serial ids: their paths take digits only ({edit_id:int}), "x" would not reach the route
           "edit_id": "1", "job_id": "1", "scenario_id": "1"}


def _principal_for(role: str) -> r.Principal:
    if role == "system":
        return r.Principal(role=r.SYSTEM, key_id="k", scopes=frozenset(r.SCOPES))
    if role == "system_geocode":
        return r.Principal(role=r.SYSTEM, key_id="k", scopes=frozenset({"geocode"}))
    return r.Principal(role=role, name=f"m-{role}")


def _allowed(action: str, role: str) -> bool:
    if action.startswith("open:"):
        return True
    return r.can(_principal_for(role), action)


def _path(route, jurisdictions) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1).split(":")[0]
        if name in SAMPLES:
            return SAMPLES[name]
        if name == "code":
            return jurisdictions["grid"] if route.path.startswith("/grids") else jurisdictions["address"]
        return "x"

    return re.sub(r"{([^}]+)}", value, route.path)


def _routes(app):
    return [(route, method) for route in api_routes(app) for method in sorted(route.methods)
            if method != "HEAD"]


def test_every_route_declares_a_policy(app):
    routes = api_routes(app)
    assert len(routes) >= 40  # the walker sees the nested routers
    missing = [f"{sorted(x.methods)} {x.path}" for x in routes if route_policy(x) is None]
    assert not missing, "routes with no declared policy (requires(...) or open_route(...)):\n" + "\n".join(missing)


def test_writes_commit_before_the_response(app):
    late = []
    for route in api_routes(app):
        stack = list(route.dependant.dependencies)
        while stack:
            dep = stack.pop()
            if dep.call is db_conn and getattr(dep, "scope", None) != "function":
                late.append(f"{sorted(route.methods)} {route.path}")
            stack.extend(dep.dependencies)
    assert not late, "db_conn without scope='function' (commits after the response):\n" + "\n".join(late)


def test_route_role_matrix(anon_client, app, role_headers, jurisdictions):
    checked = denied = 0
    failures = []
    for route, method in _routes(app):
        action = route_policy(route)
        path = _path(route, jurisdictions)
        for role in ROLES:
            allowed = _allowed(action, role)
            if allowed and method not in ("GET",):
                continue  # an allowed write is exercised by the feature tests, not with placeholder input
            res = anon_client.request(method, path, headers=role_headers[role])
            checked += 1
            if allowed:
                denied_here = res.status_code == 401 or (
                    res.status_code == 403 and res.json().get("error") != "outside_jurisdiction")
                if denied_here:
                    failures.append(f"{role} {method} {path} ({action}): {res.status_code} but allowed")
            else:
                denied += 1
                want = 401 if role == "public" else 403
                if res.status_code != want:
                    failures.append(f"{role} {method} {path} ({action}): {res.status_code}, expected {want}")
                elif "outside" in res.text and role == "public":
                    failures.append(f"{role} {method} {path}: hints at a record")
    assert not failures, "\n".join(failures[:40])
    assert checked > 100 and denied > 20
