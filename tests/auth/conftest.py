"""Fixtures of the accounts tests: owner-only secrets in a temp folder, rolled-back transactions,
committed test accounts that are deleted afterwards (names start with ``t-``)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis_api.auth.settings import AuthSettings


@pytest.fixture
def auth_settings(tmp_path) -> AuthSettings:
    return AuthSettings(secrets_dir=tmp_path / "secrets", lockout_after=3, lockout_minutes=15, demo=False)


@pytest.fixture
def tx(rolled_back):
    """A connection in a transaction rolled back after the test."""
    return rolled_back


def delete_test_accounts(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name LIKE 't-%'"))
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 't-%'"))
        conn.execute(text("DELETE FROM police_area WHERE code LIKE 'T-%'"))


@pytest.fixture
def cleanup(engine):
    """Delete what a test committed (accounts ``t-*``, keys ``t-*``, police areas ``T-*``) afterwards."""
    delete_test_accounts(engine)
    yield
    delete_test_accounts(engine)


@pytest.fixture
def app_auth(app, tmp_path):
    """The session's app with accounts settings of this test (secrets in a temp folder), restored after."""
    from gis_api.auth import ratelimit

    settings = AuthSettings(secrets_dir=tmp_path / "app-secrets", lockout_after=3)
    old = getattr(app.state, "auth_settings", None)
    app.state.auth_settings = settings
    app.state.rate_limiter = ratelimit.RateLimiter()
    yield settings
    app.state.auth_settings = old
    app.state.rate_limiter = None
