"""Errors of the siting package, as `geo.errors` domain classes (no HTTP here).

The API answers them by `gis_api.errors.ERROR_TABLE` (its class's status and code) and the CLI prints
their message and exits with status 1. The old names stay importable where they were defined:
`siting.service` (`SitingInputError`, `SitingNotFound`), `siting.models` (`SitingError`),
`siting.io` (`InputError`) and `siting.network` (`NetworkError`).
"""

from __future__ import annotations

from geo.errors import Conflict, InvalidInput, NotFound, Unavailable


class SitingInputError(InvalidInput, ValueError):
    """Input an analysis cannot use: an unknown facility type, a bad radius, no demand in the area…"""


class SitingError(SitingInputError):
    """Bad input to a location model or an infeasible instance; the message says which."""


class InputError(SitingInputError):
    """A demand or site CSV file that cannot be read (missing, wrong columns, bad numbers, degrees)."""


class NetworkError(SitingInputError):
    """Points that cannot be placed on the road network, or an empty network (``indices``: which points)."""

    def __init__(self, message: str, indices=None):
        super().__init__(message)
        self.indices = [] if indices is None else [int(i) for i in indices]


class SitingNotFound(NotFound, LookupError):
    """The admin unit (area) asked for does not exist or has no boundary."""


class SitingDataMissing(Unavailable):
    """Data the analysis needs is not loaded yet (no road network, no buildings)."""


# ---- planner workbench (issue 13): jobs and scenarios ----


class JobNotFound(NotFound, LookupError):
    """No analysis job with this id (or not the caller's)."""

    code = "job_not_found"


class JobNotDone(Conflict):
    """The job has no result: still queued or running, cancelled, or failed (the message says which)."""

    code = "job_not_done"


class ScenarioNotFound(NotFound, LookupError):
    """No siting scenario with this name (and version) in this area."""

    code = "scenario_not_found"
