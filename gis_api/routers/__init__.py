"""API routers: one module per resource, each defining `router` (discovered by gis_api.app)."""
