"""Signed plate links (二维码门牌签名): the URL a plate's QR code holds and its short check.

The link is ``{base}/p/{code}?c={check}``: the 17-digit standard-address code (its own check digit catches
most typing errors) and ``check``, the first 8 base32 characters (40 bits) of HMAC-SHA256(key, code).
Only whoever holds the key can make a check that verifies, so a plate printed with a made-up or altered
code is refused as well as a mistyped one. Pure: the key is passed in (the API keeps it in the secrets
folder, ``plate-hmac``); nothing here reads files or the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

CHECK_LEN = 8
_CHECK = re.compile(rf"^[A-Z2-7]{{{CHECK_LEN}}}$")


def plate_check(code: str, key: bytes) -> str:
    """The short check of ``code``: 8 base32 characters (A–Z, 2–7) of HMAC-SHA256(key, code)."""
    if not key:
        raise ValueError("plate key must not be empty")
    mac = hmac.new(key, code.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii")[:CHECK_LEN]


def plate_url(base_url: str, code: str, key: bytes) -> str:
    """The stable URL a plate's QR code holds: ``{base}/p/{code}?c={check}``."""
    return f"{base_url.rstrip('/')}/p/{code}?c={plate_check(code, key)}"


def verify_plate(code: str, check: str | None, key: bytes) -> bool:
    """True when ``check`` is the check of ``code`` under ``key`` (constant-time; case-insensitive)."""
    if not check or not code:
        return False
    given = check.strip().upper()
    if not _CHECK.match(given):
        return False
    return hmac.compare_digest(given, plate_check(code, key))
