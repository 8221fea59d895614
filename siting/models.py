"""Facility-location models: LSCP, MCLP and p-median over a sparse :class:`~siting.coverage.Coverage`.

This module is the face; the code lives in :mod:`siting.locate` (a ``_FacilityModel`` base and one module
per model family) and :mod:`siting.solvers` (the HiGHS wrapper and the heuristics). The shape follows
pysal/spopt (one class per model, built by ``from_coverage`` / ``from_cost_matrix``, solved by
``solve()``), but the formulations are sparse: only demand–site pairs within the cut-off exist.

* ``method="exact"``: a MILP solved by HiGHS (highspy); the result carries HiGHS' relative MIP gap
  (0 when proven optimal; > 0 when a time limit stopped it). MCLP first fixes sites by LP reduced
  costs against a heuristic incumbent; LSCP first removes dominated rows/columns.
* ``method="heuristic"``: greedy + swaps + Lagrangian rounding (MCLP), a Lagrangian heuristic with
  2-for-1 swaps (LSCP), greedy + interchange (p-median), each with a Lagrangian bound (the LP bound's
  value at best), so the gap to it is reported too.
* ``method="auto"``: exact for ordinary sizes, heuristic for city-size instances.

Fixed (existing) sites are forced open. ``p`` is the total number of open sites including the fixed
ones (as in spopt). Optional ``capacity`` (per site, in demand-weight units) switches to the
assignment formulation (exact only). p-median assigns each demand point within the cut-off only
(sparse); demand no site reaches is reported as ``uncoverable``, and if ``p`` sites cannot serve the
rest within it the instance is infeasible (a clear error).
"""

from __future__ import annotations

from .errors import SitingError
from .locate.base import EXACT_MAX_PAIRS, EXACT_MAX_SITES, HEURISTIC_MAX_SECONDS, SitingResult
from .locate.lscp import LSCP
from .locate.mclp import MCLP
from .locate.pmedian import PMedian

#: model name → class, for the API and the CLI
MODELS = {"lscp": LSCP, "mclp": MCLP, "pmedian": PMedian}

__all__ = [
    "EXACT_MAX_PAIRS",
    "EXACT_MAX_SITES",
    "HEURISTIC_MAX_SECONDS",
    "LSCP",
    "MCLP",
    "MODELS",
    "PMedian",
    "SitingError",
    "SitingResult",
]
