"""The API with its access policies switched off, for `bench_auth.py` only (never shipped as a setting).

Every route's policy dependency (`requires(...)` / `open_route(...)`) is overridden by a no-op that
returns an admin principal without reading any header: the same app, routes and handlers, minus auth.
"""

from __future__ import annotations

from gis_api.app import create_app
from gis_api.auth import roles as r
from gis_api.auth.deps import api_routes


def create():
    app = create_app()
    admin = r.Principal(role=r.ADMIN, name="bench")

    async def no_policy() -> r.Principal:
        return admin

    for route in api_routes(app):
        stack = list(route.dependant.dependencies)
        while stack:
            dep = stack.pop()
            if isinstance(getattr(dep.call, "action", None), str):
                app.dependency_overrides[dep.call] = no_policy
            stack.extend(dep.dependencies)
    from gis_api.auth.deps import current_principal

    app.dependency_overrides[current_principal] = no_policy
    return app
