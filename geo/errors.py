"""Domain errors: what went wrong, in words for people, with no transport in them.

Every package raises these (or its own subclasses of them); `gis_api.errors.ERROR_TABLE` maps each class
to an HTTP status and an error code for the API, and the CLI prints the same message and exits non-zero.
A subclass may set ``code`` (a stable machine-readable string) for a more specific error.
"""

from __future__ import annotations

from typing import Any


class ShequError(Exception):
    """Base of every domain error: ``message`` for people, ``detail`` for machines, ``code`` if specific."""

    code: str | None = None

    def __init__(self, message: str, detail: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code:
            self.code = code


class BadRequest(ShequError):
    """The request itself is malformed (unknown parameter value, unreadable query)."""


class InvalidInput(ShequError):
    """Well-formed input that breaks a rule: invalid geometry, coordinates outside China, a bad code."""


class NotAuthenticated(ShequError):
    """No valid credentials were given."""


class PermissionDenied(ShequError):
    """The caller is known but may not do this."""


class NotFound(ShequError):
    """The record asked for does not exist (or is not visible to the caller)."""


class Conflict(ShequError):
    """The change clashes with the current state (a duplicate name, an overlap, a retired record)."""


class StaleVersion(ShequError):
    """The caller edited an old version of the record."""


class TooLarge(ShequError):
    """The input is over a size limit (upload bytes, rows, cells, pairs)."""


class RateLimited(ShequError):
    """Too many requests in the window."""


class Unavailable(ShequError):
    """A resource the work needs is not there right now (database down, data not built yet)."""
