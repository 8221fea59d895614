"""The address registry's errors: typed subclasses of the domain errors in `geo.errors`, no HTTP in them.

`gis_api.errors.ERROR_TABLE` maps them by their `geo.errors` base: an invalid change answers 422, a
missing address 404, a clash with the current registry 409. ``message`` is for people; ``detail`` (a
dict) is for machines and is what the bulk import reads to name the field of a bad row.
"""

from __future__ import annotations

from geo.errors import Conflict, InvalidInput, NotFound, ShequError


class RegistryError(ShequError):
    """A rejected registry change. ``kind`` names the case for older callers: invalid, conflict, not_found."""

    kind = "invalid"


class InvalidAddress(RegistryError, InvalidInput):
    """The change breaks a registry rule: a malformed component, a point outside its district, a bad area."""

    kind = "invalid"


class AddressNotFound(RegistryError, NotFound):
    """No address (or no active address) with the given code."""

    kind = "not_found"


class AddressConflict(RegistryError, Conflict):
    """The change clashes with the registry: a duplicate address or name, a retired address, live children."""

    kind = "conflict"


class CodeError(InvalidInput, ValueError):
    """A malformed standard-address code (still a ValueError for callers that parse codes)."""


class ImportFileError(InvalidInput, ValueError):
    """An import file that cannot be read as a whole (not CSV / GeoJSON, no header, too many rows)."""
