"""Domain errors of the layers package (bad query parameters are `layers.ogc.QueryError`)."""

from __future__ import annotations

from geo.errors import TooLarge


class ExportTooLarge(TooLarge):
    """An export would hold more features than the server writes in one file: narrow it (bbox / filter)."""
