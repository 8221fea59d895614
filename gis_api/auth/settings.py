"""Settings of accounts and sessions, read from the environment (prefix ``SHEQU_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_secrets_dir() -> Path:
    from gis_api.settings import Settings

    return Settings().data_dir / "secrets"


class AuthSettings(BaseSettings):
    """Accounts, tokens, sessions, lockout; ``SHEQU_DEMO=1`` turns demo mode on (off by default)."""

    model_config = SettingsConfigDict(env_prefix="SHEQU_", extra="ignore")

    # Demo mode: one clearly labelled account per role (``make run`` sets it; off otherwise).
    demo: bool = False
    # The public address of the platform (QR plate URLs, links in mails), e.g. https://gis.example.gov.cn
    public_base_url: str | None = None
    # Lifetime of the bearer access tokens of ``POST /auth/token``.
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Lifetime of a browser session (cookie and server-side row).
    session_hours: float = Field(default=8, gt=0, le=24 * 30)
    # Failed logins before the account is locked, and the first lock's length; each further failure
    # after that doubles the lock (capped at 16×), a success resets the counter.
    lockout_after: int = Field(default=5, ge=1)
    lockout_minutes: float = Field(default=15, gt=0)
    session_cookie: str = "shequ_session"
    csrf_cookie: str = "shequ_csrf"
    csrf_header: str = "X-CSRF-Token"
    # Default per-key rate limit of new API keys (requests per minute).
    key_rate_per_min: int = Field(default=600, ge=1)
    # Generated secrets (JWT key, admin password file): owner-only folder, never inside the repository.
    secrets_dir: Path = Field(default_factory=_default_secrets_dir)
