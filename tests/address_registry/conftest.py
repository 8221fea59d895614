"""Registry fixture: the demo registry built once per session on the session's PostGIS."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def registry(engine):
    """Build the registry (idempotent: a second build in the same session changes nothing)."""
    from address_registry.service import build_registry

    with engine.begin() as conn:
        stats = build_registry(conn)
    return stats


@pytest.fixture(scope="session")
def geocoder(engine, registry):
    from address_registry import store
    from address_registry.geocoder import Geocoder

    with engine.connect() as conn:
        return Geocoder(**store.load_geocoder_inputs(conn))


@pytest.fixture
def tx(registry, rolled_back):
    """A rolled-back transaction (`rolled_back`) over the built registry."""
    return rolled_back
