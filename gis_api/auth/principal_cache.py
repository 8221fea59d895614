"""Principals of recently verified credentials, reused for a few seconds (no database read per request).

Any change to accounts, grants, sessions or keys made in this process clears it at once (`store` calls
`clear`); a change made by another process (the CLI, another server worker) takes effect within `TTL_S`.
"""

from __future__ import annotations

from typing import Any

from geo.cache import TtlCache

TTL_S = 5.0
#: credential digest → (principal, key rate limit or None, token expiry epoch or None)
CACHE: TtlCache[tuple[Any, int | None, float | None]] = TtlCache(ttl_s=TTL_S)


def clear() -> None:
    """Forget every cached principal (after a change to accounts, grants, sessions or keys)."""
    CACHE.clear()
