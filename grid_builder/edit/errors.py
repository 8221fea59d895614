"""Errors of grid editing: every refusal names the rule, the grids and the place (GeoJSON, lon/lat)."""

from __future__ import annotations

from typing import Any

from grid_builder.errors import GridConflict, GridError, GridNotFound, InvalidGridInput


class EditRefused(InvalidGridInput):
    """An edit that would break a rule (gap, overlap, a grid in pieces, a stranded building, a bad line).

    ``detail`` = ``{"rule": …, "codes": [...], "geometry": GeoJSON or None, "issues": [...]}``.
    """

    code = "edit_refused"

    def __init__(self, rule: str, message: str, codes: list[str] | None = None,
                 geometry: dict[str, Any] | None = None, issues: list[dict] | None = None):
        super().__init__(f"{message} [rule: {rule}]",
                         {"rule": rule, "codes": list(codes or []), "geometry": geometry,
                          "issues": list(issues or [])})
        self.rule = rule


class StaleBase(GridConflict):
    """The edit was drafted on versions of grids that have changed since: 409 with what changed."""

    code = "stale_base"


class EditStateConflict(GridConflict):
    """A workflow step that does not fit the edit's state (approve a draft not submitted, …)."""

    code = "edit_state"


class EditNotFound(GridNotFound):
    """No such edit (or grid version)."""


__all__ = ["EditNotFound", "EditRefused", "EditStateConflict", "GridError", "StaleBase"]
