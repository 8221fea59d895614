"""Short-lived access tokens (JWT HS256), browser session tokens and API keys (``sk_<id>_<random>``).

Access tokens are signed with a secret generated on first use (``secrets.load_or_create("jwt")``); they
carry subject, name, role, ``iat``, ``exp`` and ``jti``. API keys and session tokens are random, shown
once, and stored only as SHA-256 (they are high-entropy, so a slow hash adds nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from geo.errors import NotAuthenticated

from . import secrets
from .settings import AuthSettings

ALGORITHM = "HS256"
ISSUER = "shequ-gis"
TOKEN_EXPIRED = "访问令牌已过期，请重新登录 access token expired, log in again"
TOKEN_INVALID = "访问令牌无效 invalid access token"
KEY_INVALID = "缺少或无效的 API 密钥 missing or invalid X-API-Key header"
KEY_PREFIX = "sk_"
_KEY = re.compile(r"^sk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})$")


def jwt_secret(settings: AuthSettings | None = None) -> bytes:
    """The signing secret (created 0600 in the secrets folder on first use)."""
    return secrets.load_or_create("jwt", settings)


def issue_access_token(
    subject: str,
    name: str,
    role: str,
    settings: AuthSettings | None = None,
    secret: bytes | None = None,
    now: datetime | None = None,
) -> tuple[str, int]:
    """A signed access token for ``subject`` (e.g. ``user:12``) and its lifetime in seconds."""
    settings = settings or AuthSettings()
    now = now or datetime.now(UTC)
    lifetime = int(settings.access_token_minutes * 60)
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "name": name,
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, secret or jwt_secret(settings), algorithm=ALGORITHM)
    return token, lifetime


def decode_access_token(
    token: str, settings: AuthSettings | None = None, secret: bytes | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The claims of a valid access token; expired, tampered or foreign tokens → NotAuthenticated (401)."""
    key = secret or jwt_secret(settings)
    options = {"require": ["exp", "iat", "sub", "jti"], "verify_exp": now is None}
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, options=options)  # type: ignore[arg-type]
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated(TOKEN_EXPIRED, code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(TOKEN_INVALID, code="token_invalid") from exc
    if now is not None and claims["exp"] <= now.timestamp():
        raise NotAuthenticated(TOKEN_EXPIRED, code="token_expired")
    if claims.get("typ") != "access":
        raise NotAuthenticated(TOKEN_INVALID, code="token_invalid")
    return claims


def sha256_hex(value: str) -> str:
    """SHA-256 of a high-entropy token, hex (what the database keeps of keys and sessions)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (key id, the key shown once ``sk_<id>_<random>``, its SHA-256 to store)."""
    key_id = _random.token_hex(6)
    plain = f"{KEY_PREFIX}{key_id}_{_random.token_urlsafe(32)}"
    return key_id, plain, sha256_hex(plain)


def parse_api_key(plain: str) -> str:
    """The id part of a well-formed key; anything else → NotAuthenticated (401)."""
    m = _KEY.match(plain.strip()) if plain else None
    if not m:
        raise NotAuthenticated(KEY_INVALID, code="invalid_api_key")
    return m.group(1)


def key_matches(plain: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with the stored hash."""
    return hmac.compare_digest(sha256_hex(plain.strip()), stored_hash)


def new_session_token() -> tuple[str, str]:
    """A browser session token (cookie value) and its SHA-256 (the session row's id)."""
    plain = _random.token_urlsafe(32)
    return plain, sha256_hex(plain)


def csrf_token(session_token: str, settings: AuthSettings | None = None) -> str:
    """The CSRF token bound to one session (HMAC of the session token): the ``csrf`` cookie's value."""
    key = secrets.load_or_create("csrf", settings)
    return hmac.new(key, session_token.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, cookie_value: str | None, header_value: str | None,
            settings: AuthSettings | None = None) -> bool:
    """Double submit: the header echoes the cookie, and both are this session's token."""
    if not cookie_value or not header_value:
        return False
    expected = csrf_token(session_token, settings)
    return hmac.compare_digest(cookie_value, header_value) and hmac.compare_digest(header_value, expected)
