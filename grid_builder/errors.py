"""Errors of the grid builder: `geo.errors` classes with no transport in them.

`GridError` is the base every grid-builder error shares (so ``except GridError`` catches them all); the
concrete classes also derive from the fitting `geo.errors` class, which gives them their meaning (and,
through `gis_api.errors.ERROR_TABLE`, their HTTP status and CLI message). Raise a concrete class, not
`GridError` itself.
"""

from __future__ import annotations

from geo.errors import Conflict, InvalidInput, NotFound, ShequError, TooLarge, Unavailable


class GridError(ShequError):
    """Base of every grid-builder error (message in Chinese + English)."""


class GridNotFound(GridError, NotFound):
    """The community, grid, micro-grid or area asked for does not exist (or has no grids yet)."""


class InvalidGridInput(GridError, InvalidInput):
    """Input that breaks a rule: a bad household band, a unit of the wrong level, no boundary."""


class GridConflict(GridError, Conflict):
    """The change clashes with the current state (a retired community, a concurrent assignment)."""


class NoBaseData(GridError, Unavailable):
    """The base layers the work needs are not loaded (no buildings: load the demo first)."""


class EmptyCommunity(InvalidGridInput):
    """A community boundary with nothing to divide (empty or invalid)."""


class H3Error(InvalidGridInput):
    """A bad H3 resolution, coverage mode or cell id."""


class ImportProblem(InvalidGridInput):
    """A boundary file that cannot be imported (unreadable, missing columns, unknown parents)."""


class StaffProblem(GridError):
    """Base of the staff-assignment errors: an assignment that cannot be made."""


class InvalidStaffAssignment(StaffProblem, InvalidInput):
    """Unknown role, a role of another level, an empty person reference, a start without time zone."""


class StaffTermConflict(StaffProblem, Conflict):
    """The new term would start before the current holder's term."""


__all__ = [
    "EmptyCommunity",
    "GridConflict",
    "GridError",
    "GridNotFound",
    "H3Error",
    "ImportProblem",
    "InvalidGridInput",
    "InvalidStaffAssignment",
    "NoBaseData",
    "StaffProblem",
    "StaffTermConflict",
]


class TooManyCells(GridError, TooLarge):
    """An H3 request over the cell budget (refused before the cells are computed)."""
