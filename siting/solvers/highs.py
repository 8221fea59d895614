"""A thin wrapper over HiGHS (highspy): build a sparse LP/MILP, solve it, read status, solution and bound."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def new_highs():
    """A silent ``highspy.Highs``.

    Its constructor prints a banner on the C-level stdout, which must stay clean for ``--json`` output,
    so fd 1 points at /dev/null while it is built.
    """
    import ctypes
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return h


def build_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit, options=None):
    """A HiGHS instance holding ``min/max c·x  s.t. row_lo ≤ A x ≤ row_hi, col_lo ≤ x ≤ col_hi``.

    Returns the instance and the integrality mask (``integer`` as booleans).
    """
    import highspy

    h = new_highs()
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    A = sp.csc_matrix(A)
    lp = highspy.HighsLp()
    lp.num_col_ = int(A.shape[1])
    lp.num_row_ = int(A.shape[0])
    lp.col_cost_ = np.asarray(c, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.asarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.asarray(row_hi, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = int(A.shape[1])
    lp.a_matrix_.num_row_ = int(A.shape[0])
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    is_int = np.asarray(integer, dtype=bool)
    if is_int.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if f else highspy.HighsVarType.kContinuous for f in is_int
        ]
    h.passModel(lp)
    return h, is_int


def run_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit, mip_rel_gap, start=None,
              options=None):
    """Solve ``min/max c·x  s.t. row_lo ≤ A x ≤ row_hi, col_lo ≤ x ≤ col_hi`` with HiGHS.

    ``start`` is a feasible point to begin from (MILP only). Returns (status, x or None, objective,
    relative MIP gap, best bound).
    """
    import highspy

    h, is_int = build_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit,
                            {"mip_rel_gap": float(mip_rel_gap), **(options or {})})
    if start is not None and is_int.any():
        sol = highspy.HighsSolution()
        sol.col_value = list(np.asarray(start, dtype=np.float64))
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    solution = h.getSolution()
    x = np.asarray(solution.col_value, dtype=np.float64) if solution.value_valid else None
    if is_int.any():
        gap, bound = float(info.mip_gap), float(info.mip_dual_bound)
    else:
        gap, bound = 0.0, float(info.objective_function_value)
    return status, x, float(info.objective_function_value), gap, bound


def lp_relaxation(c, A, row_lo, row_hi, col_lo, col_hi, maximize, time_limit):
    """LP relaxation by interior point + crossover (much faster than dual simplex on coverage LPs).

    Returns (status, x, objective, reduced costs), the reduced costs from the crossover basis; all but the
    status are ``None`` unless HiGHS proved the LP optimal.
    """
    n = len(c)
    h, _ = build_highs(c, A, row_lo, row_hi, col_lo, col_hi, np.zeros(n, dtype=bool), maximize, time_limit,
                       {"solver": "ipm", "run_crossover": "on"})
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    sol = h.getSolution()
    if not (sol.value_valid and sol.dual_valid) or status != "Optimal":
        return status, None, None, None
    return status, np.asarray(sol.col_value), float(h.getInfo().objective_function_value), np.asarray(sol.col_dual)
